package kafkatest

// A fleet in which a client's requests land on different nodes, on
// purpose: behind a balancer each new connection may reach another node,
// and a client keeps separate connections for separate jobs (franz-go has
// one for Produce and one for everything else), so the node that answers
// its Metadata is often not the node that receives its Produce.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// SplitProxy forwards Kafka connections request by request: Produce (key
// 0) goes to one backend, every other request to another. Requests of a
// connection are forwarded one at a time, each answer before the next
// request, so answers keep their order. A Produce with acks 0 has no
// answer and is not supported. Safe for concurrent use.
type SplitProxy struct {
	// Addr is where it listens.
	Addr string
	ln   net.Listener

	mu                 sync.Mutex // protects produceTo and otherTo
	produceTo, otherTo string
	wg                 sync.WaitGroup
	closeOnce          sync.Once
	conns              sync.Map // net.Conn -> struct{}, closed with the proxy
}

// StartSplitProxy listens on a free loopback port; connections are served
// once Route has named the backends. It stops when the test ends.
func StartSplitProxy(t testing.TB) *SplitProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &SplitProxy{Addr: ln.Addr().String(), ln: ln}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Route sends Produce requests to produce and every other request to
// other (host:port of a Kafka listener each); it applies to connections
// accepted from now on.
func (p *SplitProxy) Route(produce, other string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.produceTo, p.otherTo = produce, other
}

func (p *SplitProxy) close() {
	p.closeOnce.Do(func() {
		p.ln.Close()
		p.conns.Range(func(c, _ any) bool {
			c.(net.Conn).Close()
			return true
		})
		p.wg.Wait()
	})
}

func (p *SplitProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Store(c, struct{}{})
		p.mu.Lock()
		produce, other := p.produceTo, p.otherTo
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c, produce, other)
		}()
	}
}

// serve forwards c's requests until either side closes.
func (p *SplitProxy) serve(c net.Conn, produce, other string) {
	backends := map[string]net.Conn{}
	defer func() {
		c.Close()
		p.conns.Delete(c)
		for _, b := range backends {
			b.Close()
			p.conns.Delete(b)
		}
	}()
	for {
		req, err := readFrame(c)
		if err != nil || len(req) < 6 {
			return
		}
		to := other
		if binary.BigEndian.Uint16(req[4:]) == 0 {
			to = produce
		}
		b := backends[to]
		if b == nil {
			if b, err = net.Dial("tcp", to); err != nil {
				return
			}
			backends[to] = b
			p.conns.Store(b, struct{}{})
		}
		if _, err := b.Write(req); err != nil {
			return
		}
		resp, err := readFrame(b)
		if err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// readFrame reads one size-prefixed frame, prefix included.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > maxResponse {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	_, err := io.ReadFull(r, frame[4:])
	return frame, err
}
