package com.venus.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * IngestService takes batches of monitoring events from SDKs and publishes each
 * valid event to Kafka, answering with one result per event.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: venus/v1/ingest.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class IngestServiceGrpc {

  private IngestServiceGrpc() {}

  public static final String SERVICE_NAME = "venus.v1.IngestService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<com.venus.v1.UploadEventsRequest,
      com.venus.v1.UploadEventsResponse> getUploadEventsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "UploadEvents",
      requestType = com.venus.v1.UploadEventsRequest.class,
      responseType = com.venus.v1.UploadEventsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.venus.v1.UploadEventsRequest,
      com.venus.v1.UploadEventsResponse> getUploadEventsMethod() {
    io.grpc.MethodDescriptor<com.venus.v1.UploadEventsRequest, com.venus.v1.UploadEventsResponse> getUploadEventsMethod;
    if ((getUploadEventsMethod = IngestServiceGrpc.getUploadEventsMethod) == null) {
      synchronized (IngestServiceGrpc.class) {
        if ((getUploadEventsMethod = IngestServiceGrpc.getUploadEventsMethod) == null) {
          IngestServiceGrpc.getUploadEventsMethod = getUploadEventsMethod =
              io.grpc.MethodDescriptor.<com.venus.v1.UploadEventsRequest, com.venus.v1.UploadEventsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "UploadEvents"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.lite.ProtoLiteUtils.marshaller(
                  com.venus.v1.UploadEventsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.lite.ProtoLiteUtils.marshaller(
                  com.venus.v1.UploadEventsResponse.getDefaultInstance()))
              .build();
        }
      }
    }
    return getUploadEventsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.venus.v1.StreamEventsRequest,
      com.venus.v1.StreamEventsResponse> getStreamEventsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "StreamEvents",
      requestType = com.venus.v1.StreamEventsRequest.class,
      responseType = com.venus.v1.StreamEventsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
  public static io.grpc.MethodDescriptor<com.venus.v1.StreamEventsRequest,
      com.venus.v1.StreamEventsResponse> getStreamEventsMethod() {
    io.grpc.MethodDescriptor<com.venus.v1.StreamEventsRequest, com.venus.v1.StreamEventsResponse> getStreamEventsMethod;
    if ((getStreamEventsMethod = IngestServiceGrpc.getStreamEventsMethod) == null) {
      synchronized (IngestServiceGrpc.class) {
        if ((getStreamEventsMethod = IngestServiceGrpc.getStreamEventsMethod) == null) {
          IngestServiceGrpc.getStreamEventsMethod = getStreamEventsMethod =
              io.grpc.MethodDescriptor.<com.venus.v1.StreamEventsRequest, com.venus.v1.StreamEventsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.BIDI_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "StreamEvents"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.lite.ProtoLiteUtils.marshaller(
                  com.venus.v1.StreamEventsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.lite.ProtoLiteUtils.marshaller(
                  com.venus.v1.StreamEventsResponse.getDefaultInstance()))
              .build();
        }
      }
    }
    return getStreamEventsMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static IngestServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<IngestServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<IngestServiceStub>() {
        @java.lang.Override
        public IngestServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new IngestServiceStub(channel, callOptions);
        }
      };
    return IngestServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static IngestServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<IngestServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<IngestServiceBlockingStub>() {
        @java.lang.Override
        public IngestServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new IngestServiceBlockingStub(channel, callOptions);
        }
      };
    return IngestServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static IngestServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<IngestServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<IngestServiceFutureStub>() {
        @java.lang.Override
        public IngestServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new IngestServiceFutureStub(channel, callOptions);
        }
      };
    return IngestServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * IngestService takes batches of monitoring events from SDKs and publishes each
   * valid event to Kafka, answering with one result per event.
   * </pre>
   */
  public static abstract class IngestServiceImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * UploadEvents validates, enriches and publishes one batch of events.
     * Problems with the whole request (missing meta, no events, too many events,
     * too much work in flight, broker unreachable) fail the RPC with a gRPC status.
     * Problems with one event are reported in that event's result and never stop
     * the other events.
     * </pre>
     */
    public void uploadEvents(com.venus.v1.UploadEventsRequest request,
        io.grpc.stub.StreamObserver<com.venus.v1.UploadEventsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getUploadEventsMethod(), responseObserver);
    }

    /**
     * <pre>
     * StreamEvents takes many batches over one long-lived stream, with the same
     * rules as UploadEvents for each batch.
     * Each response answers one batch and carries that batch's sequence number;
     * batches are processed concurrently (a bounded number per stream), so
     * responses may come back in another order than the batches were sent. A
     * problem with one batch as a whole is that batch's rejection, not the end of
     * the stream. When Venus shuts down it answers the batches it has taken, then
     * ends the stream with UNAVAILABLE: send the unanswered batches again on a new
     * stream.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<com.venus.v1.StreamEventsRequest> streamEvents(
        io.grpc.stub.StreamObserver<com.venus.v1.StreamEventsResponse> responseObserver) {
      return io.grpc.stub.ServerCalls.asyncUnimplementedStreamingCall(getStreamEventsMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getUploadEventsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                com.venus.v1.UploadEventsRequest,
                com.venus.v1.UploadEventsResponse>(
                  this, METHODID_UPLOAD_EVENTS)))
          .addMethod(
            getStreamEventsMethod(),
            io.grpc.stub.ServerCalls.asyncBidiStreamingCall(
              new MethodHandlers<
                com.venus.v1.StreamEventsRequest,
                com.venus.v1.StreamEventsResponse>(
                  this, METHODID_STREAM_EVENTS)))
          .build();
    }
  }

  /**
   * <pre>
   * IngestService takes batches of monitoring events from SDKs and publishes each
   * valid event to Kafka, answering with one result per event.
   * </pre>
   */
  public static final class IngestServiceStub extends io.grpc.stub.AbstractAsyncStub<IngestServiceStub> {
    private IngestServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected IngestServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new IngestServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * UploadEvents validates, enriches and publishes one batch of events.
     * Problems with the whole request (missing meta, no events, too many events,
     * too much work in flight, broker unreachable) fail the RPC with a gRPC status.
     * Problems with one event are reported in that event's result and never stop
     * the other events.
     * </pre>
     */
    public void uploadEvents(com.venus.v1.UploadEventsRequest request,
        io.grpc.stub.StreamObserver<com.venus.v1.UploadEventsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getUploadEventsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * StreamEvents takes many batches over one long-lived stream, with the same
     * rules as UploadEvents for each batch.
     * Each response answers one batch and carries that batch's sequence number;
     * batches are processed concurrently (a bounded number per stream), so
     * responses may come back in another order than the batches were sent. A
     * problem with one batch as a whole is that batch's rejection, not the end of
     * the stream. When Venus shuts down it answers the batches it has taken, then
     * ends the stream with UNAVAILABLE: send the unanswered batches again on a new
     * stream.
     * </pre>
     */
    public io.grpc.stub.StreamObserver<com.venus.v1.StreamEventsRequest> streamEvents(
        io.grpc.stub.StreamObserver<com.venus.v1.StreamEventsResponse> responseObserver) {
      return io.grpc.stub.ClientCalls.asyncBidiStreamingCall(
          getChannel().newCall(getStreamEventsMethod(), getCallOptions()), responseObserver);
    }
  }

  /**
   * <pre>
   * IngestService takes batches of monitoring events from SDKs and publishes each
   * valid event to Kafka, answering with one result per event.
   * </pre>
   */
  public static final class IngestServiceBlockingStub extends io.grpc.stub.AbstractBlockingStub<IngestServiceBlockingStub> {
    private IngestServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected IngestServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new IngestServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * UploadEvents validates, enriches and publishes one batch of events.
     * Problems with the whole request (missing meta, no events, too many events,
     * too much work in flight, broker unreachable) fail the RPC with a gRPC status.
     * Problems with one event are reported in that event's result and never stop
     * the other events.
     * </pre>
     */
    public com.venus.v1.UploadEventsResponse uploadEvents(com.venus.v1.UploadEventsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getUploadEventsMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * IngestService takes batches of monitoring events from SDKs and publishes each
   * valid event to Kafka, answering with one result per event.
   * </pre>
   */
  public static final class IngestServiceFutureStub extends io.grpc.stub.AbstractFutureStub<IngestServiceFutureStub> {
    private IngestServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected IngestServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new IngestServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * UploadEvents validates, enriches and publishes one batch of events.
     * Problems with the whole request (missing meta, no events, too many events,
     * too much work in flight, broker unreachable) fail the RPC with a gRPC status.
     * Problems with one event are reported in that event's result and never stop
     * the other events.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.venus.v1.UploadEventsResponse> uploadEvents(
        com.venus.v1.UploadEventsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getUploadEventsMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_UPLOAD_EVENTS = 0;
  private static final int METHODID_STREAM_EVENTS = 1;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final IngestServiceImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(IngestServiceImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_UPLOAD_EVENTS:
          serviceImpl.uploadEvents((com.venus.v1.UploadEventsRequest) request,
              (io.grpc.stub.StreamObserver<com.venus.v1.UploadEventsResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_STREAM_EVENTS:
          return (io.grpc.stub.StreamObserver<Req>) serviceImpl.streamEvents(
              (io.grpc.stub.StreamObserver<com.venus.v1.StreamEventsResponse>) responseObserver);
        default:
          throw new AssertionError();
      }
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (IngestServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .addMethod(getUploadEventsMethod())
              .addMethod(getStreamEventsMethod())
              .build();
        }
      }
    }
    return result;
  }
}
