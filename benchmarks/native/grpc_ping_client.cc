// A blocking C++ gRPC client for benchmarks/grpc_overhead.py: sends one request body to a method
// N times, one at a time, and prints the median round trip in milliseconds. Against the zero-work
// C++ server it measures loopback plus C++ gRPC on both sides: what no client can go below here.
//
//   grpc_ping_client TARGET METHOD REQUEST_FILE REQUESTS
//
// Build: g++ -O2 -std=c++17 grpc_ping_client.cc $(pkg-config --cflags --libs grpc++) (Debian: libgrpc++-dev)

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: " << argv[0] << " TARGET METHOD REQUEST_FILE REQUESTS\n";
    return 2;
  }
  std::ifstream in(argv[3], std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << argv[3] << "\n";
    return 2;
  }
  const std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int requests = std::atoi(argv[4]);
  if (requests < 10) {
    std::cerr << "REQUESTS must be >= 10\n";
    return 2;
  }
  grpc::GenericStub stub(grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  grpc::CompletionQueue cq;
  grpc::Slice slice(body);
  const grpc::ByteBuffer request(&slice, 1);
  std::vector<double> ms;
  ms.reserve(requests);
  for (int i = 0; i < requests; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::ByteBuffer response;
    grpc::Status status;
    const auto t0 = std::chrono::steady_clock::now();
    auto call = stub.PrepareUnaryCall(&context, argv[2], request, &cq);
    call->StartCall();
    call->Finish(&response, &status, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok) || !ok || !status.ok()) {
      std::cerr << "request " << i << " failed: " << status.error_message() << "\n";
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> measured(ms.begin() + requests / 10, ms.end());  // the first tenth warms up
  std::nth_element(measured.begin(), measured.begin() + measured.size() / 2, measured.end());
  std::cout << measured[measured.size() / 2] << std::endl;
  cq.Shutdown();
  return 0;
}
