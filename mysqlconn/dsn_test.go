package mysqlconn_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/mysqlconn"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "mysql://repl:p%40ss@db.example:3307/shop?tls=skip-verify", want: "mysql://repl:***@db.example:3307/shop"},
		{in: "mysql://root@127.0.0.1", want: "mysql://root@127.0.0.1:3306"},
		{in: "mysql://root:x@[::1]:3306", want: "mysql://root:***@[::1]:3306"},
		{in: "postgres://u:secret@h", err: "want mysql://USER:PASSWORD@HOST:PORT"},
		{in: "mysql://u:secret@h:99999", err: "bad port"},
		{in: "mysql://u:secret@h:3306?colour=red", err: `unknown parameter "colour"`},
		{in: "mysql://:secret@h:3306", err: "no user"},
		{in: "mysql://u:secret@h?tls=sometimes", err: "tls=sometimes: want one of disabled, preferred, required, verify-ca, verify-identity"},
		{in: "mysql://u:secret@h?tls=verify-ca", err: "verify-ca needs a CA certificate"},
		{in: "mysql://u:secret@h?tls_ca=/ca.pem", err: "set a mode"},
		{in: "mysql://u:secret@h?tls=required&tls_cert=/c.pem", err: "both a client certificate and its key"},
		{in: "mysql://u:secret@h?read_timeout=soon", err: "read_timeout=soon: want a positive duration"},
		{in: "mysql://u:secret@h?timeout=-1s", err: "timeout=-1s: want a positive duration"},
		{in: "mysql://u:secret@h?tls=verify-identity&tls_ca=/ca.pem&tls_server_name=db&read_timeout=5s", want: "mysql://u:***@h:3306"},
	}
	for _, tt := range tests {
		d, err := mysqlconn.ParseDSN(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseDSN(%q) error %v, want %q without the password", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || d.String() != tt.want {
			t.Errorf("ParseDSN(%q) = %q, %v; want %q", tt.in, d.String(), err, tt.want)
		}
	}
	if d, _ := mysqlconn.ParseDSN("mysql://repl:p%40ss@h:1"); d.Password != "p@ss" {
		t.Errorf("password %q, want p@ss", d.Password)
	}
}

// TestDSNParams: the parameters reach the parsed DSN, and the old
// go-sql-driver TLS names map to the mysql client's modes.
func TestDSNParams(t *testing.T) {
	tests := []struct {
		in   string
		want mysqlconn.DSN
	}{
		{"mysql://u@h", mysqlconn.DSN{Timeout: 10 * time.Second, ReadTimeout: 10 * time.Minute, WriteTimeout: time.Minute}},
		{"mysql://u@h?tls=true", mysqlconn.DSN{TLS: mysqlconn.TLS{Mode: "verify-identity"}, Timeout: 10 * time.Second, ReadTimeout: 10 * time.Minute, WriteTimeout: time.Minute}},
		{"mysql://u@h?tls=skip-verify&timeout=3s", mysqlconn.DSN{TLS: mysqlconn.TLS{Mode: "required"}, Timeout: 3 * time.Second, ReadTimeout: 10 * time.Minute, WriteTimeout: time.Minute}},
		{"mysql://u@h?tls=false&read_timeout=20s&write_timeout=7s", mysqlconn.DSN{TLS: mysqlconn.TLS{Mode: "disabled"}, Timeout: 10 * time.Second, ReadTimeout: 20 * time.Second, WriteTimeout: 7 * time.Second}},
		{"mysql://u@h?tls=VERIFY-CA&tls_ca=/a&tls_cert=/b&tls_key=/c&tls_server_name=db.internal", mysqlconn.DSN{
			TLS:     mysqlconn.TLS{Mode: "verify-ca", CA: "/a", Cert: "/b", Key: "/c", ServerName: "db.internal"},
			Timeout: 10 * time.Second, ReadTimeout: 10 * time.Minute, WriteTimeout: time.Minute}},
	}
	for _, tt := range tests {
		d, err := mysqlconn.ParseDSN(tt.in)
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", tt.in, err)
			continue
		}
		tt.want.User, tt.want.Host, tt.want.Port = "u", "h", 3306
		if d != tt.want {
			t.Errorf("ParseDSN(%q) = %+v, want %+v", tt.in, d, tt.want)
		}
	}
}
