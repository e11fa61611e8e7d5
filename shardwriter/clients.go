package shardwriter

import (
	"fmt"
	"net/http"
	"strings"
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
	// endpoint carries its scheme ("https://host" unless configured as
	// "http://host"): the SDK sends to <scheme><project>.<host> and uses
	// plain http for an endpoint without one (log_project.go parseEndpoint
	// in aliyun-log-go-sdk v0.1.127).
	endpoint string
	http     *http.Client
	// region and authVersion select the signature: v4 (SLS4-HMAC-SHA256,
	// scoped to region) or v1 (request.go realRequest switches on
	// LogProject.AuthVersion, copied from Client.AuthVersion).
	region      string
	authVersion sls.AuthVersionType
	// retryTimeout bounds the SDK's own retries of GETs on network
	// errors, so a catalog call during an outage fails fast.
	retryTimeout time.Duration
	userAgent    string

	mu      sync.Mutex
	clients map[wal.Credential]*sls.Client
}

// newClientPool makes the pool o describes: https unless the endpoint is
// written with "http://", v4 signatures when a region is set (or v4/v1 as
// o.AuthVersion says).
func newClientPool(o *Options) (*clientPool, error) {
	p := &clientPool{endpoint: o.Endpoint, http: o.HTTPClient, region: o.Region, retryTimeout: 5 * time.Second, userAgent: "slsrelay"}
	if !strings.HasPrefix(p.endpoint, "http://") && !strings.HasPrefix(p.endpoint, "https://") {
		p.endpoint = "https://" + p.endpoint
	}
	switch o.AuthVersion {
	case "":
		p.authVersion = sls.AuthV1
		if o.Region != "" {
			p.authVersion = sls.AuthV4
		}
	case "v4":
		if o.Region == "" {
			// SignerV4 puts the region in the credential scope
			// (signature_v4.go); without one SLS cannot check it.
			return nil, fmt.Errorf("shardwriter: signature v4 needs the SLS region (e.g. cn-hangzhou)")
		}
		p.authVersion = sls.AuthV4
	case "v1":
		p.authVersion = sls.AuthV1
	default:
		return nil, fmt.Errorf("shardwriter: auth version must be v1 or v4, not %q", o.AuthVersion)
	}
	return p, nil
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
	// The SDK's current constructor with a credentials provider
	// (client_interface.go CreateNormalInterfaceV2; the AccessKeyID and
	// AccessKeySecret fields are deprecated).
	cl := sls.CreateNormalInterfaceV2(p.endpoint, sls.NewStaticCredentialsProvider(c.AccessKeyID, c.AccessKeySecret, "")).(*sls.Client)
	// Every field the SDK's initHttpClient would fill in is set here, so
	// that its lazy initialisation never writes: it runs under a read lock
	// (client.go convertLocked, called with accessKeyLock.RLock held by
	// convert and convertLogstore in v0.1.127), so concurrent first calls
	// on one client would race there.
	timeout := p.http.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	cl.HTTPClient = p.http
	cl.UserAgent = p.userAgent
	cl.RequestTimeOut = timeout
	cl.RetryTimeOut = p.retryTimeout
	cl.AuthVersion, cl.Region = p.authVersion, p.region
	p.clients[c] = cl
	return cl
}
