module github.com/venus-gateway/venus/clients/go/example

go 1.17

require (
	github.com/venus-gateway/venus/clients/go v0.0.0-00010101000000-000000000000
	google.golang.org/grpc v1.33.3
)

require (
	github.com/golang/protobuf v1.5.2 // indirect
	golang.org/x/net v0.7.0 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.7.0 // indirect
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013 // indirect
	google.golang.org/protobuf v1.28.1 // indirect
)

// The example is an outside module that builds against the stubs beside it, as yours would while you
// work on both; without this line it uses the published module.
replace github.com/venus-gateway/venus/clients/go => ../
