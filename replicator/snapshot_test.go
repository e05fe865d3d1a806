package replicator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/replicator"
	"github.com/sluice-cdc/sluice/verify"
)

// snapshotSchema is tables of every kind of key and many column types,
// filled with rows from MariaDB's sequence engine.
func snapshotSchema(db string, rows int) []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		// A composite key, most column types, text in several character sets.
		"CREATE TABLE " + db + `.wide (a INT NOT NULL, b VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL,
			i8 TINYINT, u8 TINYINT UNSIGNED, i64 BIGINT, u64 BIGINT UNSIGNED, m MEDIUMINT UNSIGNED,
			d DECIMAL(20,6), f FLOAT, dbl DOUBLE, f2 FLOAT(7,3), bt BIT(17), yr YEAR,
			dt DATE, dtm DATETIME(6), tm TIME(3), ts TIMESTAMP(4) NULL,
			e ENUM('x','y','z'), s SET('p','q','r'),
			l1 VARCHAR(30) CHARACTER SET latin1, cp VARCHAR(30) CHARACTER SET cp1251, gb VARCHAR(30) CHARACTER SET gbk,
			u16 VARCHAR(10) CHARACTER SET utf16, bin BINARY(6), vb VARBINARY(40), bl BLOB, tx MEDIUMTEXT, js JSON,
			g GEOMETRY, uu UUID, i6 INET6, i4 INET4, gen BIGINT AS (i64 + 1) VIRTUAL,
			PRIMARY KEY (a, b))`,
		"INSERT INTO " + db + fmt.Sprintf(`.wide (a, b, i8, u8, i64, u64, m, d, f, dbl, f2, bt, yr, dt, dtm, tm, ts, e, s, l1, cp, gb, u16, bin, vb, bl, tx, js, g, uu, i6, i4)
			SELECT seq %% 7, CONCAT('k', seq), CAST(seq %% 128 AS SIGNED) - 64, seq %% 256, CAST(seq AS SIGNED) * 7919 - 40000000000, 18446744073709551615 - seq, seq %% 16777215,
			seq / 7, seq / 3, 1e0 / seq, seq / 9, seq %% 131072, 1901 + seq %% 254,
			'2024-02-29' - INTERVAL seq DAY, '2024-01-01 00:00:00.000001' + INTERVAL seq SECOND, SEC_TO_TIME(CAST(seq AS SIGNED) * 37 - 400000) + INTERVAL 0.123 SECOND,
			FROM_UNIXTIME(1 + seq * 1000) + INTERVAL 0.5 SECOND,
			ELT(1 + seq %% 3, 'x', 'y', 'z'), seq %% 8,
			CONCAT('caf', X'E9', seq), CONCAT(X'CFF0E8E2E5F2', seq), CONCAT(X'C4E3BAC3', seq),
			CONCAT('z', seq), UNHEX(HEX(seq)), UNHEX(LPAD(HEX(seq), 8, '0')), REPEAT(UNHEX('00FF'), seq %% 50), REPEAT('ü', seq %% 300),
			JSON_OBJECT('n', seq, 's', CONCAT('v', seq)), POINT(seq, -seq), UUID(), CONCAT('2001:db8::', HEX(seq %% 65535)), CONCAT('10.0.', seq %% 256, '.1')
			FROM %s.seq_1_to_%d`, db, rows),
		"UPDATE " + db + ".wide SET ts = NULL, e = NULL, g = NULL WHERE a = 3",
		// wide's columns whose values go to a MariaDB target as prepared
		// statements' parameters (sqltext.Param), not literals.
		"CREATE TABLE " + db + ".scalars (id INT AUTO_INCREMENT PRIMARY KEY) SELECT i8, u8, i64, u64, m, d, f, dbl, f2, bt, yr, dt, dtm, tm, ts, e, s, l1, cp, gb, bin, vb, bl, tx FROM " + db + ".wide ORDER BY a, b",
		// A unique NOT NULL key and no primary key.
		"CREATE TABLE " + db + ".ukey (code VARCHAR(12) NOT NULL, n INT, UNIQUE KEY (code))",
		"INSERT INTO " + db + fmt.Sprintf(".ukey SELECT CONCAT('c', seq), seq FROM %s.seq_1_to_%d", db, rows/2),
		// No key at all, duplicate rows.
		"CREATE TABLE " + db + ".nokey (kind VARCHAR(10), n INT, r DOUBLE)",
		"INSERT INTO " + db + fmt.Sprintf(".nokey SELECT 'dup', seq %% 10, 0.1 FROM %s.seq_1_to_%d", db, rows/2),
		"CREATE TABLE " + db + ".empty (id INT PRIMARY KEY)",
		// Names and ENUM members outside ASCII, text in the table's
		// latin1 (the snapshot writes rows on binary sessions).
		"CREATE TABLE " + db + ".`ñandú` (`clé` INT PRIMARY KEY, `état` ENUM('été','hiver') NOT NULL, `côté` VARCHAR(20), `naïve` TEXT CHARACTER SET utf8mb4) CHARACTER SET latin1",
		"INSERT INTO " + db + fmt.Sprintf(".`ñandú` SELECT seq, 1 + seq %% 2, IF(seq %% 3, CONCAT('plain', seq), CONCAT('dé', seq)), CONCAT('ñ', seq, '😀') FROM %s.seq_1_to_%d", db, rows/10),
	}
}

func snapshotTables(db string) []string {
	var out []string
	for _, t := range []string{"wide", "scalars", "ukey", "nokey", "empty", "`ñandú`"} {
		out = append(out, db+"."+t)
	}
	return append(out, testenv.LoadTables(db)...)
}

// TestSnapshotInitial seeds a target by snapshot: initial from a source
// whose binlogs holding the tables' history are purged, while a write load
// runs, then streams; every table ends equal.
func TestSnapshotInitial(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("app", 40)...)
	src.Exec(t, snapshotSchema("app", 20000)...)
	// The binlogs with the tables' creation and first rows are gone:
	// start: oldest could not rebuild them.
	src.Exec(t, "FLUSH BINARY LOGS", "FLUSH BINARY LOGS")
	files := src.BinlogFiles(t)
	src.PurgeBinlogsTo(t, files[len(files)-1])
	load := testenv.StartLoad(t, src, "app", 3)

	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", "")+"    snapshot: initial\n")
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); load.Txns.Load() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write load committed nothing")
		}
	}
	load.Stop()
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	tables := snapshotTables("app")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	// The rows in order too (CHECKSUM TABLE can collide).
	for _, tbl := range tables {
		if a, b := orderedRows(t, src, tbl), orderedRows(t, dst, tbl); a != b {
			t.Errorf("%s: the ordered rows differ", tbl)
		}
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM sluice.snapshot WHERE done = 1"); n != fmt.Sprint(len(tables)) {
		t.Fatalf("%s tables recorded as copied, want %d", n, len(tables))
	}
	t.Logf("load: %d transactions during the test", load.Txns.Load())
}

// TestSnapshotRoutes seeds through routes: a renamed table is created in
// a database the target lacks, and two shard tables fill a merged table
// made by hand with the route's columns; streaming then goes on there.
func TestSnapshotRoutes(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE app",
		"CREATE TABLE app.src1 (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO app.src1 SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_300",
		"CREATE TABLE app.shard_1 (id INT PRIMARY KEY, v VARCHAR(20))",
		"CREATE TABLE app.shard_2 (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO app.shard_1 SELECT seq, CONCAT('a', seq) FROM app.seq_1_to_50",
		"INSERT INTO app.shard_2 SELECT seq, CONCAT('b', seq) FROM app.seq_1_to_70")
	dst.Exec(t, "CREATE DATABASE rep",
		"CREATE TABLE rep.merged (shard VARCHAR(20) NOT NULL, tbl VARCHAR(64) NOT NULL, id INT NOT NULL, v VARCHAR(20), PRIMARY KEY (shard, tbl, id))")
	cfg := testenv.LoadConfig(t, fmt.Sprintf(`
http: {listen: "off"}
pipelines:
  - name: p
    snapshot: initial
    sources: [{name: primary, dsn: "%s", include: ["app.*"]}]
    routes:
      - {match: "app.src1", to: rep2.renamed}
      - {match: "app.shard_*", to: rep.merged, source_column: shard, table_column: tbl}
    sink: {type: mysql, dsn: "%s"}
`, src.DSN(), dst.DSN()))
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	src.Exec(t, "INSERT INTO app.src1 VALUES (1000, 'late')", "UPDATE app.shard_2 SET v = 'changed' WHERE id = 7", "DELETE FROM app.shard_1 WHERE id = 3")
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	cell := func(b []byte) string { return string(b) }
	for _, c := range []struct{ src, dst string }{
		{"SELECT id, v FROM app.src1 ORDER BY id", "SELECT id, v FROM rep2.renamed ORDER BY id"},
		{"SELECT 'primary', 'shard_1', id, v FROM app.shard_1 UNION ALL SELECT 'primary', 'shard_2', id, v FROM app.shard_2 ORDER BY 2, 3",
			"SELECT shard, tbl, id, v FROM rep.merged ORDER BY 2, 3"},
	} {
		a, b := testenv.Rows(t, src.DB(t), c.src, cell), testenv.Rows(t, dst.DB(t), c.dst, cell)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s: %d rows on the source, %d on the target, or they differ", c.dst, len(a), len(b))
		}
	}
}

// TestSnapshotSequences seeds sequences by snapshot: initial, from a
// source whose binlogs with their history are purged: each is created
// from its definition and set to the source's row (a sequence restarted
// below its start, one cycling below its minimum, one run out
// downwards), then streaming moves them on. Their rows end equal.
func TestSnapshotSequences(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY)",
		"CREATE SEQUENCE app.plain",
		"DO NEXTVAL(app.plain)",
		"CREATE SEQUENCE app.restarted START WITH 100 MINVALUE 1 CACHE 5",
		"ALTER SEQUENCE app.restarted RESTART WITH 7",
		"DO NEXTVAL(app.restarted)",
		"CREATE SEQUENCE app.cycling START WITH 5 MINVALUE 5 MAXVALUE 10 CYCLE CACHE 0",
		"DO SETVAL(app.cycling, 2, 0, 1)",
		"CREATE SEQUENCE app.down INCREMENT BY -3",
		"DO NEXTVAL(app.down)",
		"DO SETVAL(app.down, -9223372036854775806)",
		"DO NEXTVAL(app.down)",
		"CREATE TABLE app.tbl_seq (next_not_cached_value BIGINT(21) NOT NULL, minimum_value BIGINT(21) NOT NULL, maximum_value BIGINT(21) NOT NULL, "+
			"start_value BIGINT(21) NOT NULL, increment BIGINT(21) NOT NULL, cache_size BIGINT(21) UNSIGNED NOT NULL, cycle_option TINYINT(1) UNSIGNED NOT NULL, "+
			"cycle_count BIGINT(21) NOT NULL) SEQUENCE=1",
		"INSERT INTO app.tbl_seq VALUES (50, 1, 1000, 10, 2, 3, 0, 0)",
		"FLUSH BINARY LOGS", "FLUSH BINARY LOGS")
	files := src.BinlogFiles(t)
	src.PurgeBinlogsTo(t, files[len(files)-1])
	seqs := []string{"app.plain", "app.restarted", "app.cycling", "app.down", "app.tbl_seq", "app.busy"}
	// app.busy moves while it is copied: its row is read after the
	// snapshot's position, and the rows streamed after that position only
	// move it forward.
	src.Exec(t, "CREATE SEQUENCE app.busy CACHE 0")
	busy := src.DB(t)
	stop, stopped := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				stopped <- nil
				return
			default:
			}
			if _, err := busy.Exec("DO NEXTVAL(app.busy)"); err != nil {
				stopped <- err
				return
			}
		}
	}()
	rows := func(m *testenv.MariaDB) string {
		var b strings.Builder
		for _, s := range seqs {
			b.WriteString(s + ": " + m.QueryString(t, "SELECT CONCAT_WS(',', next_not_cached_value, minimum_value, maximum_value, start_value, "+
				"increment, cache_size, cycle_option, cycle_count) FROM "+s) + "\n")
		}
		return b.String()
	}

	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", "")+"    snapshot: initial\n")
	// A target sequence the snapshot did not create stops it.
	dst.Exec(t, "CREATE DATABASE app", "CREATE SEQUENCE app.restarted")
	err := testenv.RunToEnd(t, cfg)
	if want := "sequence app.restarted already exists on the target"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error saying %q", err, want)
	}
	dst.Exec(t, "DROP SEQUENCE app.restarted")
	err = testenv.RunToEnd(t, cfg)
	close(stop)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	if a, b := rows(src), rows(dst); a != b {
		t.Fatalf("after the snapshot:\nsource\n%s\ntarget\n%s", a, b)
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM sluice.snapshot WHERE done = 1"); n != fmt.Sprint(len(seqs)+1) {
		t.Fatalf("%s tables and sequences recorded as copied, want %d", n, len(seqs)+1)
	}
	src.Exec(t, "DO NEXTVAL(app.plain)", "DO NEXTVAL(app.restarted), NEXTVAL(app.restarted), NEXTVAL(app.restarted), NEXTVAL(app.restarted), NEXTVAL(app.restarted), NEXTVAL(app.restarted)",
		"DO NEXTVAL(app.cycling)", "DO SETVAL(app.plain, 5000)", "DO NEXTVAL(app.tbl_seq)")
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	if a, b := rows(src), rows(dst); a != b {
		t.Fatalf("after streaming:\nsource\n%s\ntarget\n%s", a, b)
	}
}

// TestSnapshotGlobalLockInitial runs snapshot: initial through the
// global-lock path of MySQL sources (exercised on MariaDB) while a write
// load runs, then streams on: every table and sequence ends equal, with
// no gap and no duplicate at the switch, and every table was copied at
// one position (the lock's).
func TestSnapshotGlobalLockInitial(t *testing.T) {
	replicator.SnapshotGlobalLock(t)
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, testenv.LoadSchema("app", 40)...)
	src.Exec(t, snapshotSchema("app", 5000)...)
	src.Exec(t, "CREATE SEQUENCE app.ids CACHE 0", "DO NEXTVAL(app.ids)")
	src.Exec(t, "FLUSH BINARY LOGS", "FLUSH BINARY LOGS")
	files := src.BinlogFiles(t)
	src.PurgeBinlogsTo(t, files[len(files)-1])
	load := testenv.StartLoad(t, src, "app", 3)
	for deadline := time.Now().Add(time.Minute); load.Txns.Load() < 20; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write load committed nothing")
		}
	}

	cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", "")+"    snapshot: initial\n")
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	// One position for every table (the MariaDB path gives each table its
	// own under a write load).
	if n := dst.QueryString(t, "SELECT COUNT(DISTINCT gtid_set) FROM sluice.snapshot WHERE done = 1 AND table_name <> 'ids'"); n != "1" {
		t.Fatalf("the tables were copied at %s positions, want 1", n)
	}
	txns := load.Txns.Load()
	for deadline := time.Now().Add(time.Minute); load.Txns.Load() < txns+20; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write load stopped")
		}
	}
	load.Stop()
	src.Exec(t, "DO NEXTVAL(app.ids)")
	if err := testenv.RunToEnd(t, cfg); err != nil {
		t.Fatal(err)
	}
	tables := append(snapshotTables("app"), "app.ids")
	if a, b := src.Checksums(t, tables...), dst.Checksums(t, tables...); a != b {
		t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
	}
	ctx := context.Background()
	vt, err := verify.Tables(ctx, src.DB(t), func(s, _ string) bool { return s == "app" })
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Compare(ctx, src.DB(t), dst.DB(t), vt, verify.Options{Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Match {
			t.Errorf("verify %s: %s %v", r.Source, r.FirstDiff, r.Err)
		}
	}
	if n := dst.QueryString(t, "SELECT COUNT(*) FROM sluice.snapshot WHERE done = 1"); n != fmt.Sprint(len(tables)) {
		t.Fatalf("%s tables recorded as copied, want %d", n, len(tables))
	}
	t.Logf("load: %d transactions during the test", load.Txns.Load())
}

// TestSnapshotBinlog seeds a target with snapshot_binlog write and skip:
// with skip, the target's binlog holds none of the copied rows (only the
// streamed insert after the snapshot maps the table), with write it holds
// them; either way the target ends equal. A target user without the
// privilege to turn the binlog off gets an error that names the key.
func TestSnapshotBinlog(t *testing.T) {
	servers := testenv.StartMariaDBs(t, 2)
	src, dst := servers[0], servers[1]
	src.Exec(t, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO app.t SELECT seq, CONCAT('v', seq) FROM app.seq_1_to_5000")
	dst.Exec(t, "CREATE USER 'lim'@'%' IDENTIFIED BY 'limpw'", "GRANT ALL ON *.* TO 'lim'@'%'",
		"REVOKE SUPER, BINLOG ADMIN ON *.* FROM 'lim'@'%'")
	// tableMaps counts the target binlog's row events on app.t, by their
	// table map events.
	tableMaps := func() int {
		n := 0
		for _, f := range dst.BinlogFiles(t) {
			rows, err := dst.DB(t).Query("SHOW BINLOG EVENTS IN '" + f + "'")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var log, typ, info string
				var pos, server, end any
				if err := rows.Scan(&log, &pos, &typ, &server, &end, &info); err != nil {
					t.Fatal(err)
				}
				if typ == "Table_map" && strings.HasSuffix(info, "(app.t)") {
					n++
				}
			}
			rows.Close()
		}
		return n
	}
	for _, tc := range []struct {
		mode    string
		maps    func(int) bool
		mapsFor string
	}{
		{"write", func(n int) bool { return n > 1 }, "more than 1 (the copy's and the stream's)"},
		{"skip", func(n int) bool { return n == 1 }, "1 (the streamed insert only)"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dst.Exec(t, "DROP DATABASE IF EXISTS app", "DROP DATABASE IF EXISTS sluice", "RESET MASTER")
			cfg := testenv.LoadConfig(t, pipelineYAML(src, dst, "", "snapshot_binlog: "+tc.mode)+"\n    snapshot: initial\n")
			runToEnd(t, cfg)
			src.Exec(t, "INSERT INTO app.t VALUES (9000000 + LENGTH('"+tc.mode+"'), 'streamed')")
			runToEnd(t, cfg)
			if a, b := src.Checksums(t, "app.t"), dst.Checksums(t, "app.t"); a != b {
				t.Fatalf("checksums differ:\nsource %s\ntarget %s", a, b)
			}
			if n := tableMaps(); !tc.maps(n) {
				t.Fatalf("the target's binlog maps app.t %d times, want %s", n, tc.mapsFor)
			}
		})
	}
	t.Run("no privilege", func(t *testing.T) {
		dst.Exec(t, "DROP DATABASE IF EXISTS app", "DROP DATABASE IF EXISTS sluice")
		yaml := strings.Replace(pipelineYAML(src, dst, "", "snapshot_binlog: skip"), dst.DSN(), dst.UserDSN("lim", "limpw"), 1)
		err := testenv.RunToEnd(t, testenv.LoadConfig(t, yaml+"\n    snapshot: initial\n"))
		if err == nil || !strings.Contains(err.Error(), "snapshot_binlog: skip") || !strings.Contains(err.Error(), "BINLOG ADMIN") {
			t.Fatalf("run with a user that cannot skip the binlog: %v; want an error naming snapshot_binlog: skip and the privilege", err)
		}
		if strings.Contains(err.Error(), "limpw") {
			t.Fatalf("the error shows the password: %v", err)
		}
		t.Log(err)
	})
}
