package register

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// fhirSchemaJSON is the official FHIR R4 JSON schema
// (http://hl7.org/fhir/R4/fhir.schema.json.zip), embedded so that the
// binary validates every Bundle it imports, without the network.
//
//go:embed fhir.schema.json
var fhirSchemaJSON []byte

// fhirSchemaID is the schema's id, under which it is compiled.
const fhirSchemaID = "http://hl7.org/fhir/json-schema/4.0"

// fhirSchemas are the compiled definitions of the R4 schema, by name
// ("Bundle", "Bundle_Entry", "Patient" …). They are compiled once, on first
// use, which takes about a second.
var fhirSchemas = sync.OnceValues(compileFHIRSchemas)

func compileFHIRSchemas() (map[string]*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(fhirSchemaJSON))
	if err != nil {
		return nil, fmt.Errorf("fhir schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(fhirSchemaID, doc); err != nil {
		return nil, fmt.Errorf("fhir schema: %w", err)
	}
	if _, err := c.Compile(fhirSchemaID); err != nil {
		return nil, fmt.Errorf("fhir schema: %w", err)
	}
	root, _ := doc.(map[string]any)
	defs, _ := root["definitions"].(map[string]any)
	out := make(map[string]*jsonschema.Schema, len(defs))
	for name := range defs {
		s, err := c.Compile(fhirSchemaID + "#/definitions/" + name)
		if err != nil {
			return nil, fmt.Errorf("fhir schema: %s: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
}

// isResourceType reports whether name is a resource type of FHIR R4: the
// schema's definitions of resources start with a capital and hold no '_'.
func isResourceType(schemas map[string]*jsonschema.Schema, name string) bool {
	if name == "" || name[0] < 'A' || name[0] > 'Z' || strings.Contains(name, "_") {
		return false
	}
	_, ok := schemas[name]
	return ok
}

// schemaProblem is one violation of the schema: where in the instance, and
// what, in words.
type schemaProblem struct {
	path []string // JSON tokens below the validated value
	msg  string
}

// validate checks v against the schema and returns its violations, leaves
// of the error tree first to last.
func validate(s *jsonschema.Schema, v any) []schemaProblem {
	err := s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []schemaProblem{{msg: err.Error()}}
	}
	var out []schemaProblem
	collectLeaves(ve, &out)
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].path) < len(out[j].path) })
	return out
}

var printer = message.NewPrinter(language.English)

func collectLeaves(e *jsonschema.ValidationError, out *[]schemaProblem) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collectLeaves(c, out)
		}
		return
	}
	*out = append(*out, schemaProblem{path: e.InstanceLocation, msg: schemaMessage(e)})
}

// schemaMessage words a violation for the person who made the Bundle.
func schemaMessage(e *jsonschema.ValidationError) string {
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		return fmt.Sprintf("the element %s is required here", quoteAll(k.Missing))
	case *kind.AdditionalProperties:
		return fmt.Sprintf("%s is not an element here in FHIR R4: check the spelling and the resource type", quoteAll(k.Properties))
	case *kind.Pattern:
		return fmt.Sprintf("%q is not a valid FHIR %s", k.Got, primitiveOf(e.SchemaURL))
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		return fmt.Sprintf("%s is not allowed here: use one of %s", jsonValue(k.Got), strings.Join(want, ", "))
	case *kind.Const:
		return fmt.Sprintf("%s is not allowed here: it must be %s", jsonValue(k.Got), jsonValue(k.Want))
	case *kind.Type:
		return fmt.Sprintf("a JSON %s stands here, but FHIR wants %s", k.Got, strings.Join(k.Want, " or "))
	}
	return e.ErrorKind.LocalizedString(printer)
}

// jsonValue writes a JSON value of the instance for a message.
func jsonValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// primitiveOf names the FHIR primitive type of a schema location such as
// …#/definitions/dateTime.
func primitiveOf(schemaURL string) string {
	_, def, ok := strings.Cut(schemaURL, "#/definitions/")
	if !ok {
		return "value"
	}
	def, _, _ = strings.Cut(def, "/")
	return def
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// jsonPath writes JSON tokens as a FHIRPath-like path below prefix:
// Bundle.entry[3].resource.series[0].uid.
func jsonPath(prefix string, tokens []string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
		} else {
			b.WriteString("." + t)
		}
	}
	return b.String()
}
