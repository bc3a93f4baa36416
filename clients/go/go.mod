module github.com/venus-gateway/venus/clients/go

// The versions are those of Debian 12's packages, which CI builds and runs the stubs with
// (README.md). As a go 1.17 module it names every module that provides a package it imports,
// directly or not: that is what lets a build load this file alone, with no other go.mod fetched.
go 1.17

require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)

require (
	github.com/golang/protobuf v1.5.2 // indirect
	golang.org/x/net v0.7.0 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.7.0 // indirect
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013 // indirect
)
