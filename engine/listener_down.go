package engine

// A listener whose accepts end other than by the server's own stop (gnet
// ends its engine on an accept error such as EMFILE; a TLS listener stops
// on an accept error it cannot wait out) serves no one until the process
// starts it again. The server then says so three ways: Ready is false (a
// load balancer takes the node out), StoppedListeners names it (the
// daemon's /healthz fails, so a liveness probe restarts it), and
// ListenerDown delivers its name once (the daemon drains and exits
// non-zero, so systemd's Restart=on-failure restarts it). Nothing is lost
// by the restart: what was acknowledged is in the WAL.

// markDown records that ln stopped accepting on its own. Safe for
// concurrent use; each listener is reported once.
func (s *Server) markDown(ln *listener) {
	if ln.down.CompareAndSwap(false, true) {
		s.down <- ln.opts.Name // buffered for every listener: never blocks
	}
}

// ListenerDown delivers the name of each listener that stopped accepting
// connections on its own, once. Safe for concurrent use.
func (s *Server) ListenerDown() <-chan string { return s.down }

// StoppedListeners names the listeners that stopped accepting on their
// own, in configuration order. Safe for concurrent use.
func (s *Server) StoppedListeners() []string {
	var out []string
	for _, ln := range s.listeners {
		if ln.down.Load() {
			out = append(out, ln.opts.Name)
		}
	}
	return out
}
