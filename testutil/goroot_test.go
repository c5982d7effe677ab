package testutil_test

import "runtime"

func runtimeGOROOT() string { return runtime.GOROOT() } //nolint:staticcheck // fallback only
