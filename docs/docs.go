// Package docs holds bildrum's published specifications; the binary serves
// the OpenAPI description embedded from here.
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of the hub's and nodes' HTTP APIs.
//
//go:embed openapi.yaml
var OpenAPI []byte
