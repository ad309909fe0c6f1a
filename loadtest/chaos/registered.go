package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/strata-mq/strata/loadtest/procs"
	"github.com/strata-mq/strata/metadata"
)

// bookieLeaseTTL is the session lease of a bookie's registration.
const bookieLeaseTTL = 10 * time.Second

// registeredBookie is a bookie process whose etcd registration the cluster
// keeps: registered while it runs, dropped when it is killed, registered
// again when it restarts. (A paused bookie stays registered, as a hung one
// whose keep-alives still flow would.)
type registeredBookie struct {
	*procs.Process
	store *metadata.Store
	info  metadata.BookieInfo
	ready func(context.Context) error
	mu    struct {
		sync.Mutex
		session *metadata.Session
	}
}

func (b *registeredBookie) register(ctx context.Context) error {
	ss, err := b.store.NewSession(ctx, bookieLeaseTTL)
	if err != nil {
		return fmt.Errorf("chaos: register %s: %w", b.Name(), err)
	}
	if err := b.store.RegisterBookie(ctx, ss, b.info); err != nil {
		_ = ss.Close()
		return fmt.Errorf("chaos: register %s: %w", b.Name(), err)
	}
	b.mu.Lock()
	b.mu.session = ss
	b.mu.Unlock()
	return nil
}

func (b *registeredBookie) deregister() error {
	b.mu.Lock()
	ss := b.mu.session
	b.mu.session = nil
	b.mu.Unlock()
	if ss == nil {
		return nil
	}
	return ss.Close()
}

// Kill kills the process and drops its registration.
func (b *registeredBookie) Kill(ctx context.Context) error {
	err := b.Process.Kill(ctx)
	if derr := b.deregister(); err == nil {
		err = derr
	}
	return err
}

// Restart starts the process again, waits until it listens, and registers it.
func (b *registeredBookie) Restart() error {
	if err := b.Process.Restart(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), procs.ReadyTimeout)
	defer cancel()
	if err := b.ReadyWhile(ctx, b.ready); err != nil {
		return fmt.Errorf("chaos: %s not ready after restart: %w", b.Name(), err)
	}
	return b.register(ctx)
}
