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
	CertExpires time.Time `json:"cert_expires"` // the node's federation certificate
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

// How a region answered a call the hub fanned out.
const (
	AnswerOK      = "ok"      // answered in time
	AnswerDown    = "down"    // could not be reached
	AnswerTimeout = "timeout" // did not answer within the per-node deadline
	AnswerRefused = "refused" // answered with an error
)

// RegionAnswer states whether a region answered a fanned-out call, and why
// not. Every fanned-out answer lists one per region asked, so a total is
// never presented as complete when a region is missing.
type RegionAnswer struct {
	Region string `json:"region"`
	Status string `json:"status"`           // AnswerOK, AnswerDown, AnswerTimeout, AnswerRefused
	Reason string `json:"reason,omitempty"` // why not ok, in words
}

// NodeReport is one region's line of the federation overview: its current
// status when it answered, otherwise the last status the hub saw.
type NodeReport struct {
	RegionAnswer
	Name string     `json:"name"`
	Web  string     `json:"web"`
	Node NodeStatus `json:"node"` // current when Status is ok, else last known
}

// PeerStatus is what a peer hub (another country's data space) reports of
// its own federation: how many of its nodes answered and their totals.
type PeerStatus struct {
	Hub         string    `json:"hub"`
	Version     string    `json:"version"`
	Asked       int       `json:"asked"`
	Answered    int       `json:"answered"`
	Complete    bool      `json:"complete"`
	Women       int       `json:"women"`
	Exams       int       `json:"exams"`
	CheckedAt   time.Time `json:"checked_at"`
	LatencyMS   int64     `json:"latency_ms"`
	CertExpires time.Time `json:"cert_expires"`
}

// PeerReport is one peer hub's line of the federation overview. Status and
// Reason say how the peer answered, as for a region.
type PeerReport struct {
	Name   string     `json:"name"`
	Status string     `json:"status"`
	Reason string     `json:"reason,omitempty"`
	Peer   PeerStatus `json:"peer"`
}

// FederationOverview is the state of every node as the hub sees it now.
// Women and Exams sum only the regions that answered; Complete is false when
// any region did not. Peers are other countries' data spaces, reported
// beside the nodes and never added to the national totals.
type FederationOverview struct {
	AskedAt  time.Time    `json:"asked_at"`
	Nodes    []NodeReport `json:"nodes"`
	Peers    []PeerReport `json:"peers,omitempty"`
	Answered int          `json:"answered"`
	Asked    int          `json:"asked"`
	Complete bool         `json:"complete"`
	Women    int          `json:"women"`
	Exams    int          `json:"exams"`
}
