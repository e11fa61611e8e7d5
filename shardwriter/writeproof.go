package shardwriter

import "github.com/slsrelay/slsrelay/wal"

// WriteDenied is called by a writer when SLS answers that cred may not
// write project/logstore (RAM or STS denies log:PostLogStoreLogs).
//
// stub; replaced by the catalog branch
func (c *Catalog) WriteDenied(project, logstore string, cred wal.Credential, err error) {}
