package shardwriter

import (
	"net/http"
	"sync"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"

	"github.com/slsrelay/slsrelay/wal"
)

func init() {
	// The SDK retries 5xx answers by itself and then hides the status. The
	// writers retry, and need the status to decide how (DESIGN.md).
	sls.RetryOnServerErrorEnabled = false
}

// clientPool keeps one SDK client per AccessKey, all sharing one
// *http.Client (and so its connection pool). Safe for concurrent use.
type clientPool struct {
	endpoint string
	http     *http.Client
	// retryTimeout bounds the SDK's own retries of GETs on network
	// errors, so a catalog call during an outage fails fast.
	retryTimeout time.Duration
	userAgent    string

	mu      sync.Mutex
	clients map[wal.Credential]*sls.Client
}

func (p *clientPool) get(c wal.Credential) *sls.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cl, ok := p.clients[c]; ok {
		return cl
	}
	if p.clients == nil {
		p.clients = map[wal.Credential]*sls.Client{}
	}
	// Every field the SDK's initHttpClient would fill in is set here, so
	// that its unlocked lazy initialisation never writes: concurrent first
	// calls on one client would race there.
	timeout := p.http.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	cl := &sls.Client{
		Endpoint:        p.endpoint,
		AccessKeyID:     c.AccessKeyID,
		AccessKeySecret: c.AccessKeySecret,
		HTTPClient:      p.http,
		UserAgent:       p.userAgent,
		RequestTimeOut:  timeout,
		RetryTimeOut:    p.retryTimeout,
	}
	p.clients[c] = cl
	return cl
}
