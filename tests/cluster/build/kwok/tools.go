//go:build tools

// Package tools records the commands built from this module, so that go mod tidy keeps them.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
