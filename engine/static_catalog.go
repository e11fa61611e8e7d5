package engine

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/slsrelay/slsrelay/wal"
)

// StaticCatalog is a Catalog held in memory: fixed projects, Logstores with
// fixed partition counts, and the AccessKeys allowed to write them. It serves
// tests and the embedded default until the SLS catalog is wired in.
//
// It must not be modified once in use; reading is safe concurrently.
type StaticCatalog struct {
	// Projects maps a Project to its Logstores' partition counts.
	Projects map[string]map[string]int32
	// Keys maps an AccessKeyId to its secret. Any of them may write any
	// Project.
	Keys map[string]string
}

func (c *StaticCatalog) check(project string, cred wal.Credential) error {
	secret, ok := c.Keys[cred.AccessKeyID]
	if !ok || secret != cred.AccessKeySecret {
		return fmt.Errorf("AccessKey %q is not valid for project %q: %w", cred.AccessKeyID, project, kerr.TopicAuthorizationFailed)
	}
	if _, ok := c.Projects[project]; !ok {
		return fmt.Errorf("project %q does not exist: %w", project, kerr.UnknownTopicOrPartition)
	}
	return nil
}

// Partitions implements Catalog.
func (c *StaticCatalog) Partitions(_ context.Context, project string, cred wal.Credential, logstore string) (int32, error) {
	if err := c.check(project, cred); err != nil {
		return 0, err
	}
	n, ok := c.Projects[project][logstore]
	if !ok {
		return 0, fmt.Errorf("logstore %q does not exist in project %q: %w", logstore, project, kerr.UnknownTopicOrPartition)
	}
	return n, nil
}

// WriteProven implements Catalog: a key Partitions accepts may write.
func (c *StaticCatalog) WriteProven(string, wal.Credential, string) bool { return true }

// ProveWrite implements Catalog; WriteProven never asks for it.
func (c *StaticCatalog) ProveWrite(_ context.Context, k wal.StreamKey, e *wal.Entry) error {
	_, err := c.Partitions(context.Background(), k.Project, e.Credential, k.Logstore)
	return err
}

// Topics implements Catalog.
func (c *StaticCatalog) Topics(_ context.Context, project string, cred wal.Credential) ([]string, error) {
	if err := c.check(project, cred); err != nil {
		return nil, err
	}
	var names []string
	for name := range c.Projects[project] {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}
