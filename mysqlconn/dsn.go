// Package mysqlconn is how sluice talks to MySQL and MariaDB as a client:
// DSNs, TLS, connect/handshake/read timeouts, and the classification and
// explanation of connection and server errors (which ones are worth a
// retry, and what the operator should change for the others).
package mysqlconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Default timeouts. ReadTimeout bounds how long a statement may go without
// the server sending anything: it detects a server that stopped answering
// (hung, frozen VM, black-holed network). A DDL statement on the target
// that runs longer than it fails and is retried; raise read_timeout for
// such targets.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultReadTimeout  = 10 * time.Minute
	DefaultWriteTimeout = time.Minute
)

// TLS modes, named as the mysql client's --ssl-mode names them.
const (
	TLSDisabled       = "disabled"
	TLSPreferred      = "preferred"
	TLSRequired       = "required"        // encrypted, the server's certificate unchecked
	TLSVerifyCA       = "verify-ca"       // encrypted, the certificate signed by the CA
	TLSVerifyIdentity = "verify-identity" // and issued for the host (or server_name)
)

// TLSModes lists the valid modes.
var TLSModes = []string{TLSDisabled, TLSPreferred, TLSRequired, TLSVerifyCA, TLSVerifyIdentity}

// TLS configures the encryption of a connection.
type TLS struct {
	Mode       string // one of TLSModes; "" is disabled
	CA         string // CA certificate file (PEM)
	Cert, Key  string // client certificate and key files (PEM)
	ServerName string // name to verify instead of the host
}

// DSN is a MySQL/MariaDB address in sluice's URL form:
//
//	mysql://USER:PASSWORD@HOST:PORT[/DATABASE][?PARAMS]
//
// PARAMS: tls=disabled|preferred|required|verify-ca|verify-identity,
// tls_ca, tls_cert, tls_key, tls_server_name (files and a name),
// timeout (connect and handshake, default 10s), read_timeout (default
// 10m), write_timeout (default 1m).
type DSN struct {
	User     string
	Password string
	Host     string
	Port     int
	Database string
	TLS      TLS
	// Timeout bounds connecting and the handshake.
	Timeout time.Duration
	// ReadTimeout and WriteTimeout bound one network read or write.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

var dsnParams = []string{"tls", "tls_ca", "tls_cert", "tls_key", "tls_server_name", "timeout", "read_timeout", "write_timeout"}

// ParseDSN parses a mysql:// URL. The error never contains the password.
func ParseDSN(s string) (DSN, error) {
	var d DSN
	if !strings.HasPrefix(s, "mysql://") && !strings.HasPrefix(s, "mariadb://") {
		return d, fmt.Errorf("DSN %q: want mysql://USER:PASSWORD@HOST:PORT", RedactDSN(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return d, fmt.Errorf("DSN %q: not a URL; percent-encode special characters in the password (e.g. @ as %%40)", RedactDSN(s))
	}
	if u.User == nil || u.User.Username() == "" {
		return d, fmt.Errorf("DSN %q: no user; want mysql://USER:PASSWORD@HOST:PORT", RedactDSN(s))
	}
	d.User = u.User.Username()
	d.Password, _ = u.User.Password()
	d.Host = u.Hostname()
	if d.Host == "" {
		return d, fmt.Errorf("DSN %q: no host", RedactDSN(s))
	}
	d.Port = 3306
	if p := u.Port(); p != "" {
		if d.Port, err = strconv.Atoi(p); err != nil || d.Port <= 0 || d.Port > 65535 {
			return d, fmt.Errorf("DSN %q: bad port %q", RedactDSN(s), p)
		}
	}
	d.Database = strings.TrimPrefix(u.Path, "/")
	d.Timeout, d.ReadTimeout, d.WriteTimeout = DefaultTimeout, DefaultReadTimeout, DefaultWriteTimeout
	for k, v := range u.Query() {
		val := v[len(v)-1]
		duration := func(to *time.Duration) error {
			t, err := time.ParseDuration(val)
			if err != nil || t <= 0 {
				return fmt.Errorf("DSN %q: %s=%s: want a positive duration such as 30s", RedactDSN(s), k, val)
			}
			*to = t
			return nil
		}
		switch k {
		case "tls", "ssl", "ssl-mode", "ssl_mode":
			mode, ok := ParseTLSMode(val)
			if !ok {
				return d, fmt.Errorf("DSN %q: tls=%s: want one of %s", RedactDSN(s), val, strings.Join(TLSModes, ", "))
			}
			d.TLS.Mode = mode
		case "tls_ca":
			d.TLS.CA = val
		case "tls_cert":
			d.TLS.Cert = val
		case "tls_key":
			d.TLS.Key = val
		case "tls_server_name":
			d.TLS.ServerName = val
		case "timeout":
			err = duration(&d.Timeout)
		case "read_timeout":
			err = duration(&d.ReadTimeout)
		case "write_timeout":
			err = duration(&d.WriteTimeout)
		default:
			return d, fmt.Errorf("DSN %q: unknown parameter %q (known: %s)", RedactDSN(s), k, strings.Join(dsnParams, ", "))
		}
		if err != nil {
			return d, err
		}
	}
	if err := d.TLS.check(); err != nil {
		return d, fmt.Errorf("DSN %s: %w", d, err)
	}
	return d, nil
}

// ParseTLSMode parses a TLS mode, also accepting the go-sql-driver names
// (true, skip-verify, false) sluice took before.
func ParseTLSMode(s string) (string, bool) {
	switch m := strings.ToLower(s); m {
	case "", "false", "off", "disabled":
		return TLSDisabled, true
	case "true":
		return TLSVerifyIdentity, true
	case "skip-verify":
		return TLSRequired, true
	default:
		return m, slices.Contains(TLSModes, m)
	}
}

func (t TLS) check() error {
	if t.Mode != "" && !slices.Contains(TLSModes, t.Mode) {
		return fmt.Errorf("tls mode %q: want one of %s", t.Mode, strings.Join(TLSModes, ", "))
	}
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("tls: give both a client certificate and its key, or neither")
	}
	if t.Mode == TLSVerifyCA && t.CA == "" {
		return fmt.Errorf("tls mode verify-ca needs a CA certificate (tls_ca)")
	}
	if t.enabled() {
		return nil
	}
	if t.CA != "" || t.Cert != "" || t.ServerName != "" {
		return fmt.Errorf("tls files or server name given with tls mode %q: set a mode (preferred, required, verify-ca or verify-identity)", cmp(t.Mode, TLSDisabled))
	}
	return nil
}

func (t TLS) enabled() bool { return t.Mode != "" && t.Mode != TLSDisabled }

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// WithTLS returns d with the TLS settings of t (from a configuration
// block) where d's own parameters set none.
func (d DSN) WithTLS(t TLS) (DSN, error) {
	if t.Mode != "" {
		m, ok := ParseTLSMode(t.Mode)
		if !ok {
			return d, fmt.Errorf("tls mode %q: want one of %s", t.Mode, strings.Join(TLSModes, ", "))
		}
		t.Mode = m
	}
	merge := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	merge(&d.TLS.Mode, t.Mode)
	merge(&d.TLS.CA, t.CA)
	merge(&d.TLS.Cert, t.Cert)
	merge(&d.TLS.Key, t.Key)
	merge(&d.TLS.ServerName, t.ServerName)
	return d, d.TLS.check()
}

// Addr is host:port.
func (d DSN) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// ConnectTimeout bounds connecting and the handshake.
func (d DSN) ConnectTimeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return DefaultTimeout
}

// String is the DSN with the password replaced by "***", safe to log.
func (d DSN) String() string {
	u := url.URL{Scheme: "mysql", Host: d.Addr(), Path: "/" + d.Database}
	if d.Password != "" {
		u.User = url.UserPassword(d.User, "xxx")
	} else {
		u.User = url.User(d.User)
	}
	s := u.String()
	s = strings.Replace(s, ":xxx@", ":***@", 1)
	return strings.TrimSuffix(s, "/")
}

// TLSConfig returns the TLS configuration the DSN asks for, or nil when
// TLS is disabled. Under "preferred" the caller falls back to plain text
// when the server has no TLS.
func (d DSN) TLSConfig() (*tls.Config, error) {
	t := d.TLS
	if !t.enabled() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cmp(t.ServerName, d.Host)}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, &UserError{Msg: fmt.Sprintf("%s: tls CA: %v", d, err)}
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &UserError{Msg: fmt.Sprintf("%s: tls CA %s: no PEM certificate found", d, t.CA)}
		}
	}
	if t.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, &UserError{Msg: fmt.Sprintf("%s: tls client certificate/key: %v", d, err)}
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	switch t.Mode {
	case TLSPreferred, TLSRequired:
		// Encrypted, the certificate not checked (as the mysql client does
		// for these modes).
		tc.InsecureSkipVerify = true //nolint:gosec // the mode asks for it
	case TLSVerifyCA:
		// Check the chain, not the name.
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true //nolint:gosec // verified below
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("the server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return tc, nil
}

// DriverConfig returns a go-sql-driver configuration for the DSN.
func (d DSN) DriverConfig() (*mysql.Config, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = d.User, d.Password, "tcp", d.Addr(), d.Database
	c.Timeout = d.ConnectTimeout()
	c.ReadTimeout = d.ReadTimeout
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	c.WriteTimeout = d.WriteTimeout
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	c.ParseTime = false
	c.InterpolateParams = false
	c.AllowNativePasswords = true
	c.MultiStatements = true
	tc, err := d.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		c.TLS = tc
		c.AllowFallbackToPlaintext = d.TLS.Mode == TLSPreferred
	}
	c.Params = map[string]string{"time_zone": "'+00:00'"}
	return c, nil
}

// RedactDSN hides the password of a DSN-like string, for messages about a
// DSN that did not parse.
func RedactDSN(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return s
	}
	userinfo := rest[:at]
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":***@" + rest[at+1:]
	}
	return s
}
