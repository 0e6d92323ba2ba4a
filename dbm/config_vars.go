package dbm

import (
	"maps"
	"slices"
	"strings"
)

// knownVars are the DB_* variables LoadConfig reads: the env tags of
// Config, so that a new field is known as soon as it has its tag.
var knownVars = func() []string {
	var vs []string
	for _, v := range fieldVars {
		if v != "" {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs
}()

// varSynonyms are names other tools use for a variable LoadConfig knows by
// another name, too far from it in spelling to be found by distance.
var varSynonyms = map[string]string{
	"DB_USERNAME": "DB_USER", "DB_LOGIN": "DB_USER",
	"DB_PASS": "DB_PASSWORD", "DB_PWD": "DB_PASSWORD",
	"DB_DATABASE": "DB_NAME", "DB_DBNAME": "DB_NAME", "DB_SCHEMA": "DB_NAME",
	"DB_HOSTNAME": "DB_HOST", "DB_SERVER": "DB_HOST",
	"DB_URL": "DB_DSN", "DB_URI": "DB_DSN", "DB_CONNECTION_STRING": "DB_DSN",
	"DB_TYPE": "DB_DRIVER", "DB_DIALECT": "DB_DRIVER",
}

// checkVarNames rejects a DB_* variable (from the .env files or the
// environment) that LoadConfig does not read: a misspelt DB_PASWORD would
// otherwise be ignored, and the program would connect without a password.
// The error names the variable (never its value, which may be a secret) and
// the closest known one. The first unknown name in sorted order is
// reported, so the error is the same on every run.
func checkVarNames(vars map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		if !strings.HasPrefix(name, "DB_") || slices.Contains(knownVars, name) || injectedVar(name) {
			continue
		}
		reason := "unknown variable (LoadConfig reads the DB_* variables listed in docs/configuration.md)"
		if near := closestVar(name); near != "" {
			reason = "unknown variable: did you mean " + near + "?"
		}
		return &ConfigError{Var: name, Reason: reason}
	}
	return nil
}

// injectedVar reports a variable that the platform, not the user, puts in
// the environment of every program near a service called "db": Kubernetes'
// service variables (DB_SERVICE_HOST, DB_SERVICE_PORT, DB_PORT_5432_TCP,
// DB_PORT_5432_TCP_ADDR, ...) and Docker's legacy links (the same, and
// DB_ENV_*). They are not misspellings, and refusing them would stop every
// program in such a namespace. (Kubernetes' DB_PORT=tcp://host:5432 is
// another matter: it is DB_PORT, and not a port number; set DB_PORT
// yourself, or name the service otherwise.)
func injectedVar(name string) bool {
	rest := name[len("DB_"):]
	switch {
	case strings.HasPrefix(rest, "SERVICE_HOST"), strings.HasPrefix(rest, "SERVICE_PORT"), strings.HasPrefix(rest, "ENV_"):
		return true
	case strings.HasPrefix(rest, "PORT_"):
		p := rest[len("PORT_"):]
		i := 0
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
		return i > 0 && (i == len(p) || p[i] == '_')
	}
	return false
}

// closestVar returns the known variable name is most likely a misspelling
// of, or "" when none is close: the fewest edits, then the longest shared
// prefix (DB_USERNAME is as far from DB_NAME as from DB_USER).
func closestVar(name string) string {
	if v, ok := varSynonyms[name]; ok {
		return v
	}
	best, bestDist, bestPrefix := "", 0, 0
	for _, v := range knownVars {
		d := editDistance(name[3:], v[3:])
		p := sharedPrefix(name, v)
		if best == "" || d < bestDist || d == bestDist && p > bestPrefix {
			best, bestDist, bestPrefix = v, d, p
		}
	}
	// Beyond a third of the name's letters, it is another name, not a typo.
	if bestDist > max(2, (len(name)-3)/3) && !strings.HasPrefix(name, best) {
		return ""
	}
	return best
}

func sharedPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the Levenshtein distance between a and b (bytes: the
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
