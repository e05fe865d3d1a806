package mysqlconn_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/binlog"
	"github.com/sluice-cdc/sluice/internal/testenv"
	"github.com/sluice-cdc/sluice/mysqlconn"
)

// certs is a throwaway PKI: a CA, a server certificate for 127.0.0.1 and
// db.test, a client certificate, and a second CA that signed none of them.
type certs struct{ ca, otherCA, serverCert, serverKey, clientCert, clientKey string }

func writePEM(t *testing.T, path, typ string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newCA(t *testing.T, dir, name string) (*x509.Certificate, *rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
}

func newLeaf(t *testing.T, dir, name string, ca *x509.Certificate, caKey *rsa.PrivateKey, serial int64, server bool) (string, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"db.test"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der),
		writePEM(t, filepath.Join(dir, name+"-key.pem"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

func newCerts(t *testing.T) certs {
	dir := t.TempDir()
	ca, caKey, caPath := newCA(t, dir, "ca")
	_, _, other := newCA(t, dir, "other-ca")
	var c certs
	c.ca, c.otherCA = caPath, other
	c.serverCert, c.serverKey = newLeaf(t, dir, "server", ca, caKey, 2, true)
	c.clientCert, c.clientKey = newLeaf(t, dir, "client", ca, caKey, 3, false)
	return c
}

// TestTLS connects to a MariaDB that has its own certificates and
// require_secure_transport=ON, with each TLS mode, CA, client certificate
// and server name, through DSN parameters; and streams its binlog over TLS.
func TestTLS(t *testing.T) {
	c := newCerts(t)
	m := testenv.StartMariaDB(t, testenv.MariaDBOptions{Args: []string{"--ssl-ca=" + c.ca, "--ssl-cert=" + c.serverCert, "--ssl-key=" + c.serverKey}})
	m.Exec(t,
		"CREATE USER 'certuser'@'%' IDENTIFIED BY 'pw' REQUIRE X509", "GRANT ALL ON *.* TO 'certuser'@'%'",
		"CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)",
		"SET GLOBAL require_secure_transport = ON")
	base := fmt.Sprintf("mysql://root@127.0.0.1:%d/?timeout=5s", m.Port)
	cert := fmt.Sprintf("mysql://certuser:pw@127.0.0.1:%d/?timeout=5s", m.Port)
	tests := []struct {
		name, dsn, wantErr string
	}{
		{"plain text refused", base, "if the server or the user requires TLS, set tls=required"},
		{"disabled refused", base + "&tls=disabled", "if the server or the user requires TLS, set tls=required"},
		{"preferred", base + "&tls=preferred", ""},
		{"required", base + "&tls=required", ""},
		{"verify-ca", base + "&tls=verify-ca&tls_ca=" + c.ca, ""},
		{"verify-ca, wrong CA", base + "&tls=verify-ca&tls_ca=" + c.otherCA, "certificate"},
		{"verify-identity by IP", base + "&tls=verify-identity&tls_ca=" + c.ca, ""},
		{"verify-identity, server name", base + "&tls=verify-identity&tls_ca=" + c.ca + "&tls_server_name=db.test", ""},
		{"verify-identity, wrong name", base + "&tls=verify-identity&tls_ca=" + c.ca + "&tls_server_name=other.test", "other.test"},
		{"client certificate", cert + "&tls=verify-ca&tls_ca=" + c.ca + "&tls_cert=" + c.clientCert + "&tls_key=" + c.clientKey, ""},
		{"no client certificate", cert + "&tls=verify-ca&tls_ca=" + c.ca, "if the user requires a client certificate, set tls_cert and tls_key"},
		{"missing CA file", base + "&tls=verify-ca&tls_ca=/no/such/ca.pem", "tls CA"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := mysqlconn.ParseDSN(tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			db, err := mysqlconn.Open(ctx, d, nil)
			if tt.wantErr != "" {
				if err == nil {
					db.Close()
					t.Fatalf("connected, want an error with %q", tt.wantErr)
				}
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) || strings.Contains(err.Error(), ":pw@") {
					t.Fatalf("error %q, want %q (and no password)", err, tt.wantErr)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if enc, err := mysqlconn.Encrypted(ctx, db); err != nil || !enc {
				t.Fatalf("encrypted %v, %v", enc, err)
			}
		})
	}

	// The replication connection uses the same TLS settings.
	for _, mode := range []string{"preferred", "verify-identity&tls_ca=" + c.ca} {
		d, err := mysqlconn.ParseDSN(base + "&tls=" + mode)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		src, err := binlog.Connect(cctx, binlog.LiveConfig{DSN: d, ServerID: 9100, Start: binlog.Start{Mode: binlog.StartOldest}, StopAtEnd: true, MaxRetries: 1})
		if err != nil {
			cancel()
			t.Fatalf("tls=%s: %v", mode, err)
		}
		rows := 0
		for {
			tx, err := src.Next(cctx)
			if err != nil {
				if !strings.Contains(err.Error(), "EOF") {
					t.Errorf("tls=%s: %v", mode, err)
				}
				break
			}
			rows += tx.Len()
			tx.Close()
		}
		src.Close()
		cancel()
		if rows != 1 {
			t.Errorf("tls=%s: %d rows streamed, want 1", mode, rows)
		}
	}
}
