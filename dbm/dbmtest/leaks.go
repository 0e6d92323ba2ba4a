package dbmtest

import (
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// Grace is how long [VerifyNoLeaks] waits for resources still being closed
// (by other goroutines of the test) before it reports them.
const Grace = time.Second

// VerifyNoLeaks fails t, listing each resource with the location that opened
// it, if m still has rows or transactions open (see [dbm.Manager.Leaks]).
// Like goleak, it retries with a growing pause for up to [Grace] before
// reporting, so that resources that goroutines are closing right now are
// not reported. Call it (or defer it) before the manager is closed.
func VerifyNoLeaks(t testing.TB, m *dbm.Manager) {
	t.Helper()
	if m == nil {
		t.Error("dbmtest.VerifyNoLeaks: nil *dbm.Manager")
		return
	}
	leaks := m.Leaks()
	deadline := time.Now().Add(Grace)
	for pause := time.Millisecond; len(leaks) > 0 && time.Now().Before(deadline); pause = min(2*pause, 100*time.Millisecond) {
		time.Sleep(pause)
		leaks = m.Leaks()
	}
	if len(leaks) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("dbmtest: found unclosed rows or transactions:")
	for _, l := range leaks {
		b.WriteString("\n\t")
		b.WriteString(l.String())
		if l.Stack != "" {
			b.WriteString("\n")
			b.WriteString(indent(l.Stack))
		}
	}
	t.Error(b.String())
}

func indent(s string) string {
	return "\t\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t\t")
}
