package binlog

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DSN is a MySQL/MariaDB address in sluice's URL form:
//
//	mysql://USER:PASSWORD@HOST:PORT[/DATABASE][?tls=true|skip-verify|false&timeout=10s]
type DSN struct {
	User     string
	Password string
	Host     string
	Port     int
	Database string
	TLS      string // "", "true", "skip-verify", "preferred"
	Timeout  time.Duration
}

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
	d.Timeout = 10 * time.Second
	for k, v := range u.Query() {
		switch k {
		case "tls", "ssl":
			switch v[0] {
			case "true", "skip-verify", "preferred", "false":
				d.TLS = v[0]
			default:
				return d, fmt.Errorf("DSN %q: tls=%s: want true, skip-verify, preferred or false", RedactDSN(s), v[0])
			}
			if d.TLS == "false" {
				d.TLS = ""
			}
		case "timeout":
			if d.Timeout, err = time.ParseDuration(v[0]); err != nil {
				return d, fmt.Errorf("DSN %q: timeout=%s: %w", RedactDSN(s), v[0], err)
			}
		default:
			return d, fmt.Errorf("DSN %q: unknown parameter %q (known: tls, timeout)", RedactDSN(s), k)
		}
	}
	return d, nil
}

// Addr is host:port.
func (d DSN) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

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

// TLSConfig returns the TLS configuration the DSN asks for, or nil.
func (d DSN) TLSConfig() *tls.Config {
	switch d.TLS {
	case "true":
		return &tls.Config{ServerName: d.Host, MinVersion: tls.VersionTLS12}
	case "skip-verify", "preferred":
		return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for explicitly
	}
	return nil
}

// DriverConfig returns a go-sql-driver configuration for the DSN.
func (d DSN) DriverConfig() *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = d.User, d.Password, "tcp", d.Addr(), d.Database
	c.Timeout = d.Timeout
	c.ReadTimeout = 0
	c.ParseTime = false
	c.InterpolateParams = false
	c.AllowNativePasswords = true
	c.MultiStatements = true
	if d.TLS != "" {
		c.TLS = d.TLSConfig()
		if d.TLS == "preferred" {
			c.AllowFallbackToPlaintext = true
		}
	}
	c.Params = map[string]string{"time_zone": "'+00:00'"}
	return c
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
