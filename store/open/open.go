// Package open opens the store a DSN names: an SQLite file or a MariaDB/MySQL
// database (it imports both stores; they import neither this nor each other).
package open

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/store"
	smysql "github.com/vigil-ha/vigil/store/mysql"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// Forms lists the DSNs Open accepts, for help texts and errors.
const Forms = "a file path, sqlite:///abs/path, sqlite://rel/path, mysql://user:pass@host:port/db?params or mysql://user:pass@tcp(host:port)/db?params"

// Open opens the store dsn names:
//
//	vigil.db, /var/lib/vigil/vigil.db      an SQLite file (as --db always took)
//	sqlite:///var/lib/vigil/vigil.db       an SQLite file by absolute path
//	sqlite://vigil.db                      an SQLite file by relative path
//	mysql://user:pass@host:3306/vigil?p=v  a MariaDB/MySQL database (URL form:
//	                                       user and password percent-encoded)
//	mysql://user:pass@tcp(host:3306)/vigil the go-sql-driver/mysql DSN after mysql://
//
// owner is the SQLite file's owner record (its lock); a MySQL store, shared by
// replicas, has none. Errors never show the DSN's password.
func Open(ctx context.Context, dsn string, owner store.Owner) (store.Store, error) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		if dsn == "" {
			return nil, fmt.Errorf("no store given: want %s", Forms)
		}
		return sqlite.OpenAs(ctx, dsn, owner)
	}
	switch scheme {
	case "sqlite", "sqlite3", "file":
		if rest == "" || rest == "/" {
			return nil, fmt.Errorf("store %q names no file: want sqlite:///abs/path or sqlite://rel/path", dsn)
		}
		return sqlite.OpenAs(ctx, rest, owner)
	case "mysql", "mariadb":
		cfg, err := MySQLConfig(rest)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w (want mysql://user:pass@host:port/db or mysql://user:pass@tcp(host:port)/db)", Redact(dsn), err)
		}
		return smysql.OpenConfig(ctx, cfg)
	default:
		return nil, fmt.Errorf("store %s: unknown kind %q: want %s", Redact(dsn), scheme, Forms)
	}
}

// MySQLConfig parses what follows mysql:// in either form.
func MySQLConfig(rest string) (*mysql.Config, error) {
	at := strings.LastIndex(rest, "@")
	if at >= 0 && (strings.HasPrefix(rest[at+1:], "tcp(") || strings.HasPrefix(rest[at+1:], "unix(")) {
		cfg, err := mysql.ParseDSN(rest)
		if err != nil {
			return nil, fmt.Errorf("bad DSN: %s", hide(err.Error(), rest))
		}
		if cfg.DBName == "" {
			return nil, fmt.Errorf("no database named after the address")
		}
		return cfg, nil
	}
	u, err := url.Parse("mysql://" + rest)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %s", hide(err.Error(), rest))
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	if u.Host == "" {
		return nil, fmt.Errorf("no server address")
	}
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.DBName = strings.Trim(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return nil, fmt.Errorf("want one database name after the address, got %q", u.Path)
	}
	if u.RawQuery != "" {
		// The driver's own parser applies its parameters (tls, timeout, ...) and
		// keeps the rest as session variables.
		p, err := mysql.ParseDSN("/" + cfg.DBName + "?" + u.RawQuery)
		if err != nil {
			return nil, fmt.Errorf("parameters: %s", hide(err.Error(), rest))
		}
		p.User, p.Passwd, p.Net, p.Addr = cfg.User, cfg.Passwd, cfg.Net, cfg.Addr
		cfg = p
	}
	return cfg, nil
}

// Redact is dsn with its password, if any, replaced by ***.
func Redact(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	return scheme + "://" + hide(rest, rest)
}

// hide replaces in s the password of the user:password@ prefix of dsn.
func hide(s, dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return s
	}
	_, pw, ok := strings.Cut(dsn[:at], ":")
	if !ok || pw == "" {
		return s
	}
	s = strings.ReplaceAll(s, pw, "***")
	if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
		s = strings.ReplaceAll(s, dec, "***")
	}
	return s
}
