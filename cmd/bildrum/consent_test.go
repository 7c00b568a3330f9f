package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/consent"
)

// send makes a request with a persona's token and decodes a JSON answer.
func send(t *testing.T, method, url, token string, body, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// TestCitizenOptOutReachesTheNodes: the citizen opts out of research at the
// hub; every node's replica applies it before her answer returns, and the
// node's own consent check then refuses research for her but not care.
func TestCitizenOptOutReachesTheNodes(t *testing.T) {
	d := startDemo(t, t.TempDir())
	e := d.Endpoints()
	citizen := e.Personas["citizen"]
	var view struct {
		OptOuts    []bildrum.Purpose      `json:"opt_outs"`
		Version    int64                  `json:"version"`
		Propagated []bildrum.RegionAnswer `json:"propagated"`
	}
	code := send(t, "PUT", e.Hub.API+"/me/consent", citizen.Token,
		map[string]any{"opt_outs": []string{"research"}, "trial_contact": map[string]any{"opt_in": false}, "care_blocks": []string{}}, &view)
	if code != http.StatusOK || len(view.OptOuts) != 1 || view.Version < 1 {
		t.Fatalf("PUT /api/v1/me/consent = %d %+v", code, view)
	}
	if len(view.Propagated) != 3 {
		t.Fatalf("propagated to %v, want the three regions", view.Propagated)
	}
	for _, a := range view.Propagated {
		if a.Status != bildrum.AnswerOK {
			t.Errorf("region %s: %s %s, want the change applied", a.Region, a.Status, a.Reason)
		}
	}
	staff := e.Personas["staff-12"].Token
	node12 := e.Nodes[1].API
	var dec consent.Decision
	send(t, "GET", node12+"/consent/"+string(citizen.PersonID)+"?purpose=research", staff, nil, &dec)
	if dec.Allowed || dec.ConsentVersion != view.Version {
		t.Errorf("node 12 on research after her opt-out: %+v, want refused at version %d", dec, view.Version)
	}
	send(t, "GET", node12+"/consent/"+string(citizen.PersonID)+"?purpose=care", staff, nil, &dec)
	if !dec.Allowed {
		t.Errorf("node 12 on care: %+v, want allowed", dec)
	}

	// Her consents as FHIR, for herself; another woman's are not hers to see.
	var bundle consent.Bundle
	if code := send(t, "GET", e.Hub.Web+"/fhir/Consent", citizen.Token, nil, &bundle); code != http.StatusOK || bundle.Total != 1 ||
		bundle.Entry[0].Resource.Provision.Purpose[0].Code != "HRESCH" {
		t.Errorf("GET /fhir/Consent = %d %+v, want her research opt-out", code, bundle)
	}
	if code := send(t, "GET", e.Hub.Web+"/fhir/Consent?patient=195203072227", citizen.Token, nil, nil); code != http.StatusForbidden {
		t.Errorf("citizen asking for another woman's consents: %d, want 403", code)
	}
	// Bad choices are refused with the reason.
	if code := send(t, "PUT", e.Hub.API+"/me/consent", citizen.Token, map[string]any{"opt_outs": []string{"marketing"}}, nil); code != http.StatusBadRequest {
		t.Errorf("unknown purpose: %d, want 400", code)
	}
	if code := send(t, "PUT", e.Hub.API+"/me/consent", staff, map[string]any{"opt_outs": []string{}}, nil); code != http.StatusForbidden {
		t.Errorf("staff changing consents: %d, want 403", code)
	}
}
