// Command example sends one batch of three events to Venus, one of them deliberately invalid,
// prints the result of each event and exits 1 unless every result is the expected one.
//
//	example [-category PERF_CRASH] HOST:PORT
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	venusv1 "github.com/venus-gateway/venus/clients/go/venus/v1"
)

// expected is the code each event of the batch must get back.
var expected = map[string]venusv1.EventCode{
	"go-evt-1": venusv1.EventCode_EVENT_CODE_OK,
	"go-evt-2": venusv1.EventCode_EVENT_CODE_OK,
	"go-evt-3": venusv1.EventCode_EVENT_CODE_VALIDATION_ERROR, // its payload is not JSON
}

func main() {
	category := flag.String("category", "PERF_CRASH", "the category, and so the Kafka topic, of the batch")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: example [-category NAME] HOST:PORT")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *category); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(target, category string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", target, err)
	}
	defer conn.Close()

	response, err := venusv1.NewIngestServiceClient(conn).UploadEvents(ctx, &venusv1.UploadEventsRequest{
		Meta: &venusv1.BatchMeta{
			AppId: "example-go", Category: category, Platform: venusv1.Platform_PLATFORM_SERVER,
			SdkVersion: "go-example/1",
		},
		Events: []*venusv1.Event{
			{Id: "go-evt-1", Ip: "81.2.69.142", Payload: []byte(`{"duration_ms": 120}`)},
			{Id: "go-evt-2", Payload: []byte(`{"screen": "checkout"}`)},
			{Id: "go-evt-3", Payload: []byte("not json")},
		},
	})
	if err != nil {
		return fmt.Errorf("UploadEvents: %w", err)
	}
	fmt.Println(response.Code, response.Message)
	return check(response.Results)
}

// check prints each result and says which one, if any, is not what the batch should get.
func check(results []*venusv1.EventResult) error {
	if len(results) != len(expected) {
		return fmt.Errorf("%d results for %d events", len(results), len(expected))
	}
	for _, result := range results {
		fmt.Printf("%s %s backend_id=%q message=%q\n", result.Id, result.Code, result.BackendId, result.Message)
		if result.Code != expected[result.Id] {
			return fmt.Errorf("event %s: got %s, expected %s", result.Id, result.Code, expected[result.Id])
		}
		if result.Code == venusv1.EventCode_EVENT_CODE_OK && result.BackendId == "" {
			return fmt.Errorf("event %s is OK without a backend_id", result.Id)
		}
	}
	return nil
}
