package bildrum

import (
	"context"
	"time"
)

// Node is a regional node as the hub knows it.
type Node struct {
	Region     string     `json:"region"`
	Federation string     `json:"federation"` // base URL of the node's federation API
	Web        string     `json:"web"`        // base URL of the node's own pages
	LastStatus NodeStatus `json:"last_status"`
}

// NodeStatus is what a node reports of itself, as last seen by the hub.
type NodeStatus struct {
	Region      string    `json:"region"`
	Version     string    `json:"version"`
	Women       int       `json:"women"`
	Exams       int       `json:"exams"`
	DataVersion int64     `json:"data_version"`
	CheckedAt   time.Time `json:"checked_at"` // when the hub got this answer
	LatencyMS   int64     `json:"latency_ms"`
}

// NodeDirectory is the hub's record of the federation's nodes.
//
// PutNode adds or updates a node's addresses, keeping its last status.
// RecordStatus stores the newest status of a known node (ENOTFOUND for an
// unknown region). Nodes returns every node ordered by region code.
// Implementations are safe for concurrent use and durable on return.
type NodeDirectory interface {
	PutNode(ctx context.Context, n Node) error
	RecordStatus(ctx context.Context, s NodeStatus) error
	Nodes(ctx context.Context) ([]Node, error)
}
