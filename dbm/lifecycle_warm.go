package dbm

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// warmEvery is how often the warmer looks at the pool; tests shorten it.
var warmEvery = time.Second

// warmer keeps Config.MinIdleConns connections idle in the pool, so that a
// burst after a quiet spell (or after ConnMaxIdleTime or ConnMaxLifetime
// closed connections) does not pay for the dials. database/sql has no way
// to add a connection to its pool; the warmer takes connections with
// [sql.DB.Conn] until it holds as many as it wants idle (the idle ones
// first, then new ones the pool dials) and gives them all back at once. It
// never waits for a full pool: it warms only when the connections in use
// and the ones it wants fit under MaxOpenConns, and each round is bounded
// by Config.ConnectTimeout. Close stops it and waits for it.
type warmer struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startWarmer starts keeping n connections idle; nil when n is 0.
func startWarmer(db *sql.DB, n int, timeout time.Duration) *warmer {
	if n <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &warmer{cancel: cancel}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(warmEvery)
		defer t.Stop()
		for {
			warm(ctx, db, n, timeout)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// warm brings the pool's idle connections up to n, if there is room.
func warm(ctx context.Context, db *sql.DB, n int, timeout time.Duration) {
	s := db.Stats()
	if s.Idle >= n {
		return
	}
	if s.MaxOpenConnections > 0 && s.InUse+n > s.MaxOpenConnections {
		return // the pool is busy: its connections are not idle anyway
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	held := make([]*sql.Conn, 0, n)
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			break // the server is down or the pool filled meanwhile: next round
		}
		held = append(held, c)
	}
	for _, c := range held {
		_ = c.Close()
	}
}

// stop ends the warmer and waits for it. It does nothing on nil.
func (w *warmer) stop() {
	if w == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
}
