package sqlpool

//go:generate go run ./internal/genwrap
