package slsfake

import (
	"net/http"
	"strconv"
)

// The read-only metadata operations the relay's catalog asks before writing
// (GetProject, GetLogStore; ListShards is in shards.go) and the listings
// tools use.

func (s *Server) serveListProject(w http.ResponseWriter, key *accessKey) {
	type item struct {
		ProjectName string `json:"projectName"`
		Status      string `json:"status"`
		Region      string `json:"region"`
	}
	var out struct {
		Count    int    `json:"count"`
		Total    int    `json:"total"`
		Projects []item `json:"projects"`
	}
	for _, pc := range s.cfg.Projects {
		if allowed(key.policy, actionOf[OpGetProject], s.resourceOf(OpGetProject, pc.Name, "")) {
			out.Projects = append(out.Projects, item{ProjectName: pc.Name, Status: "Normal", Region: s.cfg.Region})
		}
	}
	out.Count, out.Total = len(out.Projects), len(out.Projects)
	s.writeJSON(w, out)
}

func (s *Server) serveGetProject(w http.ResponseWriter, p *project) {
	s.writeJSON(w, map[string]string{
		"projectName":    p.name,
		"description":    p.description,
		"status":         "Normal",
		"owner":          "",
		"region":         s.cfg.Region,
		"createTime":     strconv.FormatInt(p.created.Unix(), 10),
		"lastModifyTime": strconv.FormatInt(p.created.Unix(), 10),
	})
}

func (s *Server) serveListLogStores(w http.ResponseWriter, p *project) {
	s.writeJSON(w, map[string]any{"count": len(p.order), "total": len(p.order), "logstores": p.order})
}

func (s *Server) serveGetLogStore(w http.ResponseWriter, ls *logstore) {
	s.writeJSON(w, map[string]any{
		"logstoreName":    ls.name,
		"ttl":             ls.ttl,
		"shardCount":      ls.readWriteCount(),
		"enable_tracking": false,
		"autoSplit":       false,
		"maxSplitShard":   64,
		"appendMeta":      false,
		"telemetryType":   "None",
		"mode":            "standard",
		"createTime":      ls.created.Unix(),
		"lastModifyTime":  ls.created.Unix(),
	})
}
