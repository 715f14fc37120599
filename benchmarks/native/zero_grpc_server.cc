// A zero-work gRPC server in C++ (the gRPC stack tensorflow_model_server is built on), for
// benchmarks/grpc_overhead.py: it answers PredictionService/Predict and GetModelMetadata with
// precomputed response bytes and does nothing else, so a client's round trip against it is the
// client's overhead plus loopback plus C++ gRPC, with no serving work and no Python on the server.
//
//   zero_grpc_server PREDICT_RESPONSE_FILE METADATA_RESPONSE_FILE
//
// Listens on a free port of 127.0.0.1, prints the port on stdout, serves until killed.
// Build: g++ -O2 -std=c++17 zero_grpc_server.cc $(pkg-config --cflags --libs grpc++) (Debian: libgrpc++-dev)

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    std::exit(2);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// One unary call on the generic (bidi) API: read the request, answer with the canned bytes.
class CannedReply : public grpc::ServerGenericBidiReactor {
 public:
  explicit CannedReply(const grpc::ByteBuffer* reply) : reply_(reply) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    StartWriteAndFinish(reply_, grpc::WriteOptions(), grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  const grpc::ByteBuffer* reply_;
  grpc::ByteBuffer request_;
};

class Unimplemented : public grpc::ServerGenericBidiReactor {
 public:
  Unimplemented() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "zero-work server")); }
  void OnDone() override { delete this; }
};

class ZeroWorkService : public grpc::CallbackGenericService {
 public:
  ZeroWorkService(std::string predict, std::string metadata)
      : predict_(ToBuffer(predict)), metadata_(ToBuffer(metadata)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    if (ctx->method() == "/tensorflow.serving.PredictionService/Predict") {
      return new CannedReply(&predict_);
    }
    if (ctx->method() == "/tensorflow.serving.PredictionService/GetModelMetadata") {
      return new CannedReply(&metadata_);
    }
    return new Unimplemented();
  }

 private:
  const grpc::ByteBuffer predict_;
  const grpc::ByteBuffer metadata_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " PREDICT_RESPONSE_FILE METADATA_RESPONSE_FILE\n";
    return 2;
  }
  ZeroWorkService service(ReadFile(argv[1]), ReadFile(argv[2]));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "could not listen on 127.0.0.1\n";
    return 1;
  }
  std::cout << port << std::endl;
  server->Wait();
  return 0;
}
