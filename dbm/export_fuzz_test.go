package dbm

// LoadConfigFrom is LoadConfig reading environ (KEY=VALUE strings) instead
// of the process environment.
func LoadConfigFrom(environ []string, envFiles ...string) (Config, error) {
	return loadConfig(environ, envFiles)
}

// HardPasswords are passwords that must survive DSN building (dsn_test.go).
var HardPasswords = hardPasswords
