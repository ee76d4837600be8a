// A minimal native Triton backend that forwards each request, in-process, to another
// model (`parameters { key: "target" value: { string_value: "<model>" } }`, optional
// `target_version`), without copying its inputs: the inner request points at the outer
// request's input buffers, the outputs are copied once into the outer response. It is
// the floor of what a router written as a C++ backend would cost (evidence for the
// design, perf/bench/router_overhead.py), not part of tritonab.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "triton_api.h"

namespace {

struct ModelState {
  TRITONSERVER_Server* server = nullptr;
  std::string target;
  int64_t version = -1;
  TRITONSERVER_ResponseAllocator* allocator = nullptr;
};

// One forwarded request: the outer request is released once both the inner response
// has been copied back and the inner request has been released (in either order).
struct Forward {
  TRITONBACKEND_Request* outer;
  std::atomic<int> pending{2};
};

TRITONSERVER_Error* Fail(const std::string& message) {
  return TRITONSERVER_ErrorNew(FWD_ERROR_INVALID_ARG, message.c_str());
}

// The string value of a config parameter, from the config's JSON (enough for a bench:
// `"<key>":{"string_value":"<value>"}`).
std::string Parameter(const std::string& json, const std::string& key) {
  const std::string marker = "\"" + key + "\":{\"string_value\":\"";
  const size_t start = json.find(marker);
  if (start == std::string::npos) return "";
  const size_t from = start + marker.size();
  return json.substr(from, json.find('"', from) - from);
}

TRITONSERVER_Error* Allocate(TRITONSERVER_ResponseAllocator*, const char*, size_t byte_size,
                             TRITONSERVER_MemoryType, int64_t, void*, void** buffer, void** buffer_userp,
                             TRITONSERVER_MemoryType* actual_type, int64_t* actual_id) {
  *buffer = byte_size == 0 ? nullptr : std::malloc(byte_size);
  *buffer_userp = nullptr;
  *actual_type = FWD_MEMORY_CPU;
  *actual_id = 0;
  return nullptr;
}

TRITONSERVER_Error* Free(TRITONSERVER_ResponseAllocator*, void* buffer, void*, size_t, TRITONSERVER_MemoryType,
                         int64_t) {
  std::free(buffer);
  return nullptr;
}

void Done(Forward* forward) {
  if (forward->pending.fetch_sub(1) == 1) {
    TRITONBACKEND_RequestRelease(forward->outer, FWD_REQUEST_RELEASE_ALL);
    delete forward;
  }
}

void SendError(TRITONBACKEND_Request* request, TRITONSERVER_Error* error) {
  TRITONBACKEND_Response* response = nullptr;
  if (TRITONBACKEND_ResponseNew(&response, request) == nullptr) {
    TRITONBACKEND_ResponseSend(response, FWD_RESPONSE_COMPLETE_FINAL, error);
  } else {
    TRITONSERVER_ErrorDelete(error);
  }
}

// Copy the inner response's outputs into a response to the outer request, and send it.
TRITONSERVER_Error* Reply(TRITONBACKEND_Request* outer, TRITONSERVER_InferenceResponse* inner) {
  TRITONSERVER_Error* failed = TRITONSERVER_InferenceResponseError(inner);
  TRITONBACKEND_Response* response = nullptr;
  TRITONSERVER_Error* err = TRITONBACKEND_ResponseNew(&response, outer);
  if (err != nullptr) return err;
  if (failed != nullptr) {
    // The inner error object belongs to the inner response: send a copy.
    TRITONSERVER_Error* copy = TRITONSERVER_ErrorNew(TRITONSERVER_ErrorCode(failed), TRITONSERVER_ErrorMessage(failed));
    return TRITONBACKEND_ResponseSend(response, FWD_RESPONSE_COMPLETE_FINAL, copy);
  }
  uint32_t count = 0;
  TRITONSERVER_InferenceResponseOutputCount(inner, &count);
  for (uint32_t i = 0; i < count && err == nullptr; ++i) {
    const char* name;
    TRITONSERVER_DataType datatype;
    const int64_t* shape;
    uint64_t dims;
    const void* base;
    size_t bytes;
    TRITONSERVER_MemoryType memory_type;
    int64_t memory_id;
    void* userp;
    err = TRITONSERVER_InferenceResponseOutput(inner, i, &name, &datatype, &shape, &dims, &base, &bytes,
                                               &memory_type, &memory_id, &userp);
    TRITONBACKEND_Output* output = nullptr;
    if (err == nullptr)
      err = TRITONBACKEND_ResponseOutput(response, &output, name, datatype, shape, static_cast<uint32_t>(dims));
    void* buffer = nullptr;
    TRITONSERVER_MemoryType out_type = FWD_MEMORY_CPU;
    int64_t out_id = 0;
    if (err == nullptr) err = TRITONBACKEND_OutputBuffer(output, &buffer, bytes, &out_type, &out_id);
    if (err == nullptr && bytes > 0) std::memcpy(buffer, base, bytes);
  }
  return TRITONBACKEND_ResponseSend(response, FWD_RESPONSE_COMPLETE_FINAL, err);
}

void OnResponse(TRITONSERVER_InferenceResponse* inner, uint32_t flags, void* userp) {
  auto* forward = static_cast<Forward*>(userp);
  if (inner != nullptr) {
    TRITONSERVER_Error* err = Reply(forward->outer, inner);
    if (err != nullptr) TRITONSERVER_ErrorDelete(err);
    TRITONSERVER_InferenceResponseDelete(inner);
  }
  if (flags & FWD_RESPONSE_COMPLETE_FINAL) Done(forward);
}

void OnRelease(TRITONSERVER_InferenceRequest* inner, uint32_t, void* userp) {
  TRITONSERVER_InferenceRequestDelete(inner);
  Done(static_cast<Forward*>(userp));
}

// The inner request: the outer request's inputs (same buffers) and requested outputs.
TRITONSERVER_Error* Build(ModelState* state, TRITONBACKEND_Request* outer, TRITONSERVER_InferenceRequest* inner) {
  uint32_t inputs = 0;
  TRITONSERVER_Error* err = TRITONBACKEND_RequestInputCount(outer, &inputs);
  for (uint32_t i = 0; i < inputs && err == nullptr; ++i) {
    TRITONBACKEND_Input* input;
    const char* name;
    TRITONSERVER_DataType datatype;
    const int64_t* shape;
    uint32_t dims;
    uint64_t bytes;
    uint32_t buffers;
    err = TRITONBACKEND_RequestInputByIndex(outer, i, &input);
    if (err == nullptr) err = TRITONBACKEND_InputProperties(input, &name, &datatype, &shape, &dims, &bytes, &buffers);
    if (err == nullptr) err = TRITONSERVER_InferenceRequestAddInput(inner, name, datatype, shape, dims);
    for (uint32_t b = 0; b < buffers && err == nullptr; ++b) {
      const void* base;
      uint64_t size;
      TRITONSERVER_MemoryType memory_type;
      int64_t memory_id;
      err = TRITONBACKEND_InputBuffer(input, b, &base, &size, &memory_type, &memory_id);
      if (err == nullptr) err = TRITONSERVER_InferenceRequestAppendInputData(inner, name, base, size, memory_type, memory_id);
    }
  }
  uint32_t outputs = 0;
  if (err == nullptr) err = TRITONBACKEND_RequestOutputCount(outer, &outputs);
  for (uint32_t i = 0; i < outputs && err == nullptr; ++i) {
    const char* name;
    err = TRITONBACKEND_RequestOutputName(outer, i, &name);
    if (err == nullptr) err = TRITONSERVER_InferenceRequestAddRequestedOutput(inner, name);
  }
  (void)state;
  return err;
}

void ForwardOne(ModelState* state, TRITONBACKEND_Request* outer) {
  TRITONSERVER_InferenceRequest* inner = nullptr;
  TRITONSERVER_Error* err = TRITONSERVER_InferenceRequestNew(&inner, state->server, state->target.c_str(), state->version);
  if (err == nullptr) err = Build(state, outer, inner);
  auto* forward = new Forward{outer};
  if (err == nullptr) err = TRITONSERVER_InferenceRequestSetReleaseCallback(inner, OnRelease, forward);
  if (err == nullptr)
    err = TRITONSERVER_InferenceRequestSetResponseCallback(inner, state->allocator, nullptr, OnResponse, forward);
  if (err == nullptr) err = TRITONSERVER_ServerInferAsync(state->server, inner, nullptr);
  if (err != nullptr) {  // nothing was sent: answer the outer request here, alone
    delete forward;
    if (inner != nullptr) TRITONSERVER_InferenceRequestDelete(inner);
    SendError(outer, err);
    TRITONBACKEND_RequestRelease(outer, FWD_REQUEST_RELEASE_ALL);
  }
}

}  // namespace

extern "C" {

TRITONSERVER_Error* TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model* model) {
  auto* state = new ModelState();
  TRITONSERVER_Message* config = nullptr;
  TRITONSERVER_Error* err = TRITONBACKEND_ModelConfig(model, 1, &config);
  if (err == nullptr) {
    const char* base;
    size_t size;
    err = TRITONSERVER_MessageSerializeToJson(config, &base, &size);
    if (err == nullptr) {
      const std::string json(base, size);
      state->target = Parameter(json, "target");
      const std::string version = Parameter(json, "target_version");
      state->version = version.empty() ? -1 : std::stoll(version);
    }
    TRITONSERVER_MessageDelete(config);
  }
  if (err == nullptr && state->target.empty()) err = Fail("the forwarder needs a `target` parameter");
  if (err == nullptr) err = TRITONBACKEND_ModelServer(model, &state->server);
  if (err == nullptr) err = TRITONSERVER_ResponseAllocatorNew(&state->allocator, Allocate, Free, nullptr);
  if (err != nullptr) {
    delete state;
    return err;
  }
  return TRITONBACKEND_ModelSetState(model, state);
}

TRITONSERVER_Error* TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model* model) {
  void* state = nullptr;
  TRITONBACKEND_ModelState(model, &state);
  auto* model_state = static_cast<ModelState*>(state);
  if (model_state != nullptr) {
    TRITONSERVER_ResponseAllocatorDelete(model_state->allocator);
    delete model_state;
  }
  return nullptr;
}

TRITONSERVER_Error* TRITONBACKEND_ModelInstanceInitialize(TRITONBACKEND_ModelInstance*) { return nullptr; }

TRITONSERVER_Error* TRITONBACKEND_ModelInstanceFinalize(TRITONBACKEND_ModelInstance*) { return nullptr; }

// Each request goes on its own, asynchronously: execute returns at once and the
// requests are released when their forwarded calls complete.
TRITONSERVER_Error* TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance* instance,
                                                       TRITONBACKEND_Request** requests, uint32_t request_count) {
  TRITONBACKEND_Model* model = nullptr;
  TRITONSERVER_Error* err = TRITONBACKEND_ModelInstanceModel(instance, &model);
  void* state = nullptr;
  if (err == nullptr) err = TRITONBACKEND_ModelState(model, &state);
  if (err != nullptr) return err;
  for (uint32_t r = 0; r < request_count; ++r) ForwardOne(static_cast<ModelState*>(state), requests[r]);
  return nullptr;
}

}  // extern "C"
