// Package drivertest holds tests of package dbm that need a driver dbm does
// not import (pgx), kept apart so that dbm's own tests can check what
// happens when such a driver is missing.
package drivertest
