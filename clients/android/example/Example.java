import com.google.protobuf.ByteString;
import com.google.protobuf.Timestamp;
import com.venus.v1.BatchMeta;
import com.venus.v1.Event;
import com.venus.v1.EventCode;
import com.venus.v1.EventResult;
import com.venus.v1.IngestServiceGrpc;
import com.venus.v1.Platform;
import com.venus.v1.UploadEventsRequest;
import com.venus.v1.UploadEventsResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Sends one batch of three events to Venus with the Android (lite) messages and stubs, one event
 * deliberately invalid, prints the result of each event and exits 1 unless every result is the
 * expected one.
 *
 * <p>The code an app would write, on a plain JVM: an app builds its channel the same way, with the
 * grpc-okhttp (or grpc-android) transport on its classpath instead of grpc-netty.
 *
 * <p>Usage: {@code java Example HOST:PORT [CATEGORY]}
 */
public final class Example {
  /** The code each event of the batch must get back; android-evt-3's payload is not JSON. */
  private static final Map<String, EventCode> EXPECTED = Map.of(
      "android-evt-1", EventCode.EVENT_CODE_OK,
      "android-evt-2", EventCode.EVENT_CODE_OK,
      "android-evt-3", EventCode.EVENT_CODE_VALIDATION_ERROR);

  /** When android-evt-1 happened: 2023-11-14T22:13:20.250Z, published as occurred_at_ms 1700000000250. */
  private static final long OCCURRED_AT_S = 1_700_000_000L;

  private Example() {}

  public static void main(String[] args) throws InterruptedException {
    if (args.length < 1 || args.length > 2) {
      System.err.println("usage: java Example HOST:PORT [CATEGORY]");
      System.exit(2);
    }
    String category = args.length == 2 ? args[1] : "PERF_CRASH";
    ManagedChannel channel = ManagedChannelBuilder.forTarget(args[0]).usePlaintext().build();
    try {
      UploadEventsResponse response = IngestServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(10, TimeUnit.SECONDS)
          .uploadEvents(request(category));
      System.out.println(response.getCode() + " " + response.getMessage());
      String problem = check(response.getResultsList());
      if (problem != null) {
        fail(problem);
      }
    } catch (StatusRuntimeException e) {
      fail("UploadEvents: " + e.getStatus());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static void fail(String problem) {
    System.err.println("example: " + problem);
    System.exit(1);
  }

  private static UploadEventsRequest request(String category) {
    BatchMeta meta = BatchMeta.newBuilder()
        .setAppId("example-android").setCategory(category).setPlatform(Platform.PLATFORM_ANDROID)
        .setSdkVersion("android-example/1").setDeviceId("example-device").build();
    return UploadEventsRequest.newBuilder()
        .setMeta(meta)
        .addEvents(event("android-evt-1", "{\"duration_ms\": 120}").setIp("81.2.69.142")
            .setOccurredAt(Timestamp.newBuilder().setSeconds(OCCURRED_AT_S).setNanos(250_000_000)))
        .addEvents(event("android-evt-2", "{\"screen\": \"checkout\"}"))
        .addEvents(event("android-evt-3", "not json"))
        .build();
  }

  private static Event.Builder event(String id, String payload) {
    return Event.newBuilder().setId(id).setPayload(ByteString.copyFrom(payload, StandardCharsets.UTF_8));
  }

  /** Prints each result; what is wrong with the results, or null when they are as expected. */
  private static String check(List<EventResult> results) {
    if (results.size() != EXPECTED.size()) {
      return results.size() + " results for " + EXPECTED.size() + " events";
    }
    for (EventResult result : results) {
      System.out.printf("%s %s backend_id=\"%s\" message=\"%s\"%n",
          result.getId(), result.getCode(), result.getBackendId(), result.getMessage());
      if (result.getCode() != EXPECTED.get(result.getId())) {
        return "event " + result.getId() + ": got " + result.getCode() + ", expected " + EXPECTED.get(result.getId());
      }
      if (result.getCode() == EventCode.EVENT_CODE_OK && result.getBackendId().isEmpty()) {
        return "event " + result.getId() + " is OK without a backend_id";
      }
    }
    return null;
  }
}
