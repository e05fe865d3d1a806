package binlog_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/binlog"
)

// MySQL 8 logs the hidden column of a functional index (INDEX i((a+1)))
// in row events: the tracker adds it where the server does, so the rows of
// mysql-server's rpl_unfiltered_hidden_gcol fixture are named, not @1, @3
// (issue 14 item 7).
func TestFixtureFunctionalIndexHiddenColumn(t *testing.T) {
	txns, err := decodeFile(t, filepath.Join(fixtureDir(t), "rust_mysql_common", "rpl_unfiltered_hidden_gcol.000001"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tx := range txns {
		b, err := binlog.AppendJSON(nil, tx)
		if err != nil {
			t.Fatal(err)
		}
		if tx.Len() > 0 {
			got = append(got, string(b))
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], `"after":{"a":1,"b":"1"}`) {
		t.Fatalf("got %q", got)
	}
}
