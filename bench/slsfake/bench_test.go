package slsfake

import (
	"fmt"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// BenchmarkPutLogs measures what the stand-in absorbs from SDK clients
// (quotas off), so the bench knows it is not the bottleneck. The SDK's
// encoding and lz4 run in the same process and are part of the figure.
func BenchmarkPutLogs(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DefaultQuota = &Quota{}
	cfg.MaxStoredBytes = 64 << 20
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	lg := &sls.LogGroup{Topic: strp("bench")}
	for i := range 1000 {
		lg.Logs = append(lg.Logs, &sls.Log{Time: u32p(recent), Contents: []*sls.LogContent{
			{Key: strp("content"), Value: strp(fmt.Sprintf("%04d %0900d", i, i))},
		}})
	}
	raw, _ := lg.Marshal()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &sls.Client{Endpoint: s.Endpoint(), AccessKeyID: "demo-akid", AccessKeySecret: "demo-aksecret", HTTPClient: s.HTTPClient()}
		for pb.Next() {
			if err := c.PutLogs(proj, ls2, lg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
