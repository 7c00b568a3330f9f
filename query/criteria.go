// Package query answers feasibility counts at a node (DESIGN.md, flow 3;
// docs/feasibility.md): it reads a researcher's criteria strictly, counts
// the matching women or examinations from the node's own register minus the
// women who opted out of the purpose, and releases the count only under the
// node's disclosure rules: Laplace noise from a secure sampler
// (google/differential-privacy), suppression of small noisy counts, one
// stored answer per question and data version, a privacy budget per
// requester, and a signature over the answer's provenance.
//
// The criteria are bildrum.Criteria, a domain type, because the hub, the
// node and its store all handle them; this package owns their wire form
// (ParseCriteria) and everything about disclosure.
package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bildrum/bildrum"
)

// MaxCriteriaBytes bounds the JSON of one set of criteria.
const MaxCriteriaBytes = 16 << 10

// The members of the criteria object and of its nested objects, exactly as
// spelt: ParseCriteria refuses anything else, in any case.
var (
	criteriaFields  = []string{"purpose", "regions", "age", "exam_date", "round", "birads", "density", "outcomes", "tumour_size_mm", "nodal_status", "views", "unit"}
	rangeFields     = []string{"min", "max"}
	dateRangeFields = []string{"from", "to"}
)

// ParseCriteria reads criteria from their JSON form (docs/feasibility.md)
// and returns them checked and normalised (bildrum.Criteria.Check). Unknown
// members, members of the wrong type, trailing data, and criteria that
// cannot match are EINVALID errors whose message says what to write
// instead.
func ParseCriteria(data []byte) (bildrum.Criteria, error) {
	if len(data) > MaxCriteriaBytes {
		return bildrum.Criteria{}, bildrum.Errorf(bildrum.EINVALID, "criteria: %d bytes is more than the %d allowed", len(data), MaxCriteriaBytes)
	}
	if err := exactMembers(data); err != nil {
		return bildrum.Criteria{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c bildrum.Criteria
	if err := dec.Decode(&c); err != nil {
		return bildrum.Criteria{}, jsonError(err)
	}
	if _, err := dec.Token(); err == nil {
		return bildrum.Criteria{}, bildrum.Errorf(bildrum.EINVALID, "criteria: more data after the criteria object: send one JSON object")
	}
	return c.Check()
}

// exactMembers refuses members that encoding/json would match without
// regard to case ("Purpose") or that are unknown, naming those allowed.
// Malformed JSON is left for the typed decoding to report.
func exactMembers(data []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return nil
	}
	for name, v := range top {
		if !slices.Contains(criteriaFields, name) {
			return unknownMember("", name, criteriaFields)
		}
		var allowed []string
		switch name {
		case "age", "tumour_size_mm":
			allowed = rangeFields
		case "exam_date":
			allowed = dateRangeFields
		default:
			continue
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(v, &inner) != nil {
			continue
		}
		for k := range inner {
			if !slices.Contains(allowed, k) {
				return unknownMember(name+".", k, allowed)
			}
		}
	}
	return nil
}

func unknownMember(prefix, name string, allowed []string) error {
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return bildrum.Errorf(bildrum.EINVALID, "criteria: unknown member %q: use %s", prefix+name, strings.Join(allowed, ", "))
}

// jsonError turns a decoding error into a message for the person who wrote
// the criteria.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var be *bildrum.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return bildrum.Errorf(bildrum.EINVALID, `criteria: not valid JSON: the object ends early or is missing; send one object such as {"purpose": "research"}`)
	case errors.As(err, &be):
		return bildrum.Errorf(bildrum.EINVALID, "criteria: %s", be.Message)
	case errors.As(err, &syntax):
		return bildrum.Errorf(bildrum.EINVALID, "criteria: not valid JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return bildrum.Errorf(bildrum.EINVALID, `criteria: want a JSON object such as {"purpose": "research", "age": {"min": 50, "max": 69}}, got %s`, typ.Value)
		}
		return bildrum.Errorf(bildrum.EINVALID, "criteria: %s: want %s, got %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return bildrum.Errorf(bildrum.EINVALID, "criteria: %s: use %s", strings.TrimPrefix(err.Error(), "json: "), strings.Join(criteriaFields, ", "))
	}
	return bildrum.Errorf(bildrum.EINVALID, "criteria: %v", err)
}

// jsonType names a Go kind as the JSON type that decodes into it.
func jsonType(kind string) string {
	switch kind {
	case "int", "int64":
		return "a whole number"
	case "string":
		return "a string"
	case "slice":
		return "a list"
	case "struct", "ptr":
		return "an object"
	}
	return fmt.Sprintf("a value of kind %s", kind)
}
