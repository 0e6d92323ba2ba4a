// Package dbmmysql connects package dbm to go-sql-driver/mysql: importing
// it registers the driver (as importing the driver does) and lets [dbm.New]
// give the driver the TLS settings that Config.SSLMode "verify-ca" or
// "verify-full" with SSLRootCert, SSLCert and SSLKey describe (the driver
// takes no certificate paths in its DSN; a tls.Config must be registered
// with it by name, which only code importing it can do).
//
//	import _ "github.com/dbmanager-go/dbmanager/dbm/dbmmysql"
//
//	cfg := dbm.Config{Driver: dbm.DriverMySQL, Host: "db.internal", User: "app", Database: "app",
//		SSLMode: "verify-full", SSLRootCert: "/etc/ssl/db/ca.pem"}
//
// The modes without files (disable, prefer, require, verify-full against
// the system's CAs) need only the driver. See docs/configuration.md#mysql-and-mariadb.
package dbmmysql

import (
	"github.com/go-sql-driver/mysql"

	"github.com/dbmanager-go/dbmanager/dbm"
)

func init() { dbm.RegisterMySQLTLS(mysql.RegisterTLSConfig) }
