package slsfake

import (
	"fmt"
	"strings"
)

// RAM authorization, per action and resource, as SLS documents it:
// actions are "log:<Action>" and resources
// "acs:log:<region>:<account>:project/<p>[/logstore/<l>]", with "*" as a
// wildcard in both (https://www.alibabacloud.com/help/en/sls/developer-reference/api-sls-2020-12-30-ram,
// https://www.alibabacloud.com/help/en/doc-detail/29051.htm). An explicit
// Deny wins over any Allow; with neither, the action is denied.

// Statement is one statement of a RAM policy.
type Statement struct {
	// Effect is "Allow" (the default when empty) or "Deny".
	Effect string `yaml:"effect,omitempty" json:"effect,omitempty"`
	// Action lists actions such as "log:PostLogStoreLogs", "log:Get*",
	// "log:*".
	Action []string `yaml:"action" json:"action"`
	// Resource lists resources such as
	// "acs:log:*:*:project/p/logstore/*" or "*".
	Resource []string `yaml:"resource" json:"resource"`
}

// AccountID is the account the stand-in's resources belong to, as it shows
// in resource names ("acs:log:<region>:<AccountID>:project/…").
const AccountID = "1000000000000000"

// actionOf is the RAM action each operation needs. GetCursor, GetCursorTime
// and PullLogs share log:GetCursorOrData ("log:GetCursorOrData (GetCursor,
// PullLogs, and GetCursorTime)", https://www.alibabacloud.com/help/en/doc-detail/29051.htm).
var actionOf = map[string]string{
	OpListProject:   "log:ListProject",
	OpGetProject:    "log:GetProject",
	OpListLogStores: "log:ListLogStores",
	OpGetLogStore:   "log:GetLogStore",
	OpPutLogs:       "log:PostLogStoreLogs",
	OpListShards:    "log:ListShards",
	OpGetCursor:     "log:GetCursorOrData",
	OpGetCursorTime: "log:GetCursorOrData",
	OpPullLogs:      "log:GetCursorOrData",
	OpSplitShard:    "log:SplitShard",
	OpMergeShards:   "log:MergeShards",
}

// readActions and writeActions are what Permission.Read and .Write grant.
var (
	readActions  = []string{"log:GetProject", "log:ListLogStores", "log:GetLogStore", "log:ListShards", "log:GetCursorOrData"}
	writeActions = []string{"log:PostLogStoreLogs", "log:SplitShard", "log:MergeShards"}
)

// KafkaUploadPolicy is the custom policy SLS documents for writing through
// its Kafka endpoint: log:GetProject on the project, and log:GetLogStore,
// log:ListShards and log:PostLogStoreLogs on its logstores ("use the Kafka
// protocol to upload logs",
// https://www.alibabacloud.com/help/en/sls/use-the-kafka-protocol-to-upload-logs).
func KafkaUploadPolicy(project string) []Statement {
	return []Statement{
		{Effect: "Allow", Action: []string{"log:GetProject"}, Resource: []string{"acs:log:*:*:project/" + project}},
		{Effect: "Allow", Action: []string{"log:GetLogStore", "log:ListShards", "log:PostLogStoreLogs"},
			Resource: []string{"acs:log:*:*:project/" + project + "/logstore/*"}},
	}
}

// grants turns a key's config into one policy: its Projects permissions,
// its KafkaUpload projects and its own statements.
func (k *AccessKeyConfig) grants() []Statement {
	var out []Statement
	for project, p := range k.Projects {
		res := []string{"acs:log:*:*:project/" + project, "acs:log:*:*:project/" + project + "/*"}
		if project == "*" {
			res = []string{"*"}
		}
		if p.Read {
			// ListProject acts on project/*: a key that may read one
			// project may list (it sees only what it may GetProject).
			out = append(out, Statement{Effect: "Allow", Action: readActions, Resource: res},
				Statement{Effect: "Allow", Action: []string{"log:ListProject"}, Resource: []string{"acs:log:*:*:project/*"}})
		}
		if p.Write {
			out = append(out, Statement{Effect: "Allow", Action: writeActions, Resource: res})
		}
	}
	for _, project := range k.KafkaUpload {
		out = append(out, KafkaUploadPolicy(project)...)
	}
	return append(out, k.Policy...)
}

func checkPolicy(stmts []Statement) error {
	for i, st := range stmts {
		if st.Effect != "" && st.Effect != "Allow" && st.Effect != "Deny" {
			return fmt.Errorf("statement %d: effect %q is neither Allow nor Deny", i, st.Effect)
		}
		if len(st.Action) == 0 || len(st.Resource) == 0 {
			return fmt.Errorf("statement %d: want at least one action and one resource", i)
		}
	}
	return nil
}

// allowed evaluates a policy for one action on one resource.
func allowed(policy []Statement, action, resource string) bool {
	allow := false
	for _, st := range policy {
		if !anyMatch(st.Action, action, true) || !anyMatch(st.Resource, resource, false) {
			continue
		}
		if st.Effect == "Deny" {
			return false
		}
		allow = true
	}
	return allow
}

// anyMatch reports whether one of the patterns matches s. Action names are
// matched without regard to case, as RAM does.
func anyMatch(patterns []string, s string, fold bool) bool {
	if fold {
		s = strings.ToLower(s)
	}
	for _, p := range patterns {
		if fold {
			p = strings.ToLower(p)
		}
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globMatch matches s against a pattern where '*' stands for any run of
// characters ('/' included, as in RAM resource patterns).
func globMatch(pattern, s string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == s
	}
	if !strings.HasPrefix(s, pattern[:star]) {
		return false
	}
	rest := pattern[star+1:]
	for i := star; i <= len(s); i++ {
		if globMatch(rest, s[i:]) {
			return true
		}
	}
	return false
}

// resourceOf names what a request acts on, as SLS's denial message shows it.
func (s *Server) resourceOf(op, project, logstore string) string {
	region := s.cfg.Region
	if region == "" {
		region = "cn-local"
	}
	res := "acs:log:" + region + ":" + AccountID + ":project/"
	switch {
	case op == OpListProject:
		return res + "*"
	case op == OpListLogStores:
		return res + project + "/logstore/*"
	case logstore != "":
		return res + project + "/logstore/" + logstore
	}
	return res + project
}

// denied is SLS's answer when the key is valid but its RAM policy does not
// allow the action: 401 Unauthorized, "denied by sts or ram, action:
// log:PostLogStoreLogs, resource: acs:log:cn-beijing:<account>:project/…",
// as SLS answered in https://github.com/AliyunContainerService/log-pilot/issues/85
// and https://github.com/aliyun/aliyun-log-go-sdk/issues/38 (httpCode 401).
func denied(action, resource string) *APIError {
	return unauthorized(fmt.Sprintf("denied by sts or ram, action: %s, resource: %s", action, resource))
}
