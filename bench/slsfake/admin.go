package slsfake

import (
	"fmt"
	"net/http"
	"time"
)

// Deleting and re-creating a logstore, for tests of what a client does when
// its logstore disappears under it.
//
// The set of projects and logstores is fixed after New: the request path
// reads those maps without a lock. So a deletion is not a removal from the
// map but a standing fault that answers every request naming the logstore
// 404 LogStoreNotExist, as SLS answers for a deleted logstore; re-creating
// removes that fault and resets the shard layout. Consequences, which the
// methods' docs repeat:
//
//   - only a logstore the stand-in was configured with can be deleted, and
//     only a deleted one re-created;
//   - the deletion is listed by Faults (ErrorMessage deletedMessage) and
//     ClearFaults or RemoveFault undoes it;
//   - like every fault, it answers before the signature is checked, so a
//     wrong key sees LogStoreNotExist rather than 401 for a deleted store;
//   - ListLogStores still lists the name;
//   - logs stored before the deletion stay readable through Logs/LogCount
//     (and through PullLogs once re-created): the stand-in keeps them.

// deletedMessage is the errorMessage of a deleted logstore's fault, and
// how DeleteLogstore/CreateLogstore recognize that fault.
func deletedMessage(name string) string {
	return fmt.Sprintf("logstore %s does not exist", name)
}

// deletionFault returns the id of the fault standing for the deletion of
// project/name, or 0.
func (s *Server) deletionFault(project, name string) int {
	for _, f := range s.Faults() {
		ff := f.Fault
		if ff.Project == project && ff.Logstore == name && len(ff.Ops) == 0 && ff.Share == 1 &&
			ff.Status == http.StatusNotFound && ff.ErrorCode == "LogStoreNotExist" &&
			ff.ErrorMessage == deletedMessage(name) && ff.Count == 0 && ff.For == 0 {
			return f.ID
		}
	}
	return 0
}

// DeleteLogstore makes a configured logstore answer every request 404
// LogStoreNotExist, as a deleted one does, until CreateLogstore re-creates
// it. It is a fault (see Faults): ClearFaults undoes it too. ListLogStores
// still lists the name, and the logs stored before stay readable through
// Logs. The error, if any, is an *APIError: ProjectNotExist,
// LogStoreNotExist (unknown, or deleted already).
func (s *Server) DeleteLogstore(project, name string) error {
	if _, aerr := s.logstore(project, name); aerr != nil {
		return aerr
	}
	if s.deletionFault(project, name) != 0 {
		return &APIError{Status: http.StatusNotFound, Code: "LogStoreNotExist", Message: deletedMessage(name)}
	}
	_, err := s.AddFault(Fault{
		Project: project, Logstore: name,
		Status: http.StatusNotFound, ErrorCode: "LogStoreNotExist", ErrorMessage: deletedMessage(name),
	})
	return err
}

// CreateLogstore re-creates a logstore removed with DeleteLogstore, with the
// shard layout, TTL and quota of ls (ls.Name names it; defaults as in
// Config). Since the set of logstores is fixed after New, a logstore the
// stand-in was not configured with cannot be created; the TTL stays what
// GetLogStore reported before. The error, if any, is an *APIError:
// ProjectNotExist, LogStoreAlreadyExist (it was not deleted),
// ParameterInvalid (a bad layout, or a name the stand-in does not know).
func (s *Server) CreateLogstore(project string, ls LogstoreConfig) error {
	p := s.projects[project]
	if p == nil {
		return &APIError{Status: http.StatusNotFound, Code: "ProjectNotExist",
			Message: fmt.Sprintf("The Project does not exist : %s", project)}
	}
	live := p.logstores[ls.Name]
	if live == nil {
		return badRequest("ParameterInvalid", fmt.Sprintf(
			"slsfake cannot create logstore %s/%s: its logstores are fixed at start; only one removed with DeleteLogstore can be re-created", project, ls.Name))
	}
	id := s.deletionFault(project, ls.Name)
	if id == 0 {
		return &APIError{Status: http.StatusBadRequest, Code: "LogStoreAlreadyExist",
			Message: fmt.Sprintf("logstore %s already exists", ls.Name)}
	}
	norm, err := Config{Projects: []ProjectConfig{{Name: project, Logstores: []LogstoreConfig{ls}}}}.normalize()
	if err != nil {
		return badRequest("ParameterInvalid", err.Error())
	}
	lc := norm.Projects[0].Logstores[0]
	quota := *s.cfg.DefaultQuota
	if lc.Quota != nil {
		quota = *lc.Quota
	}
	fresh := newLogstore(project, lc, quota, time.Now())
	live.mu.Lock()
	live.shards, live.quota = fresh.shards, fresh.quota
	live.mu.Unlock()
	s.RemoveFault(id)
	return nil
}
