// The runtime port on wabt's interpreter (libwabt, Debian package `wabt`): see runtime.h for the contract.
// wabt's interpreter is a reference interpreter, not a fast one; it is here because Debian ships it as a library
// the board can link, so CI builds the board from packages alone.
#include "runtime.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "wabt/binary-reader.h"
#include "wabt/error.h"
#include "wabt/feature.h"
#include "wabt/interp/binary-reader-interp.h"
#include "wabt/interp/interp.h"

using namespace wabt;
using namespace wabt::interp;

struct rt_instance {
  Features features;
  Store store;
  Memory::Ptr memory;
  Instance::Ptr instance;
  Module::Ptr module;
  std::unique_ptr<Thread> thread;
  std::vector<HostFunc::Ptr> host_funcs;
  explicit rt_instance(const Features &f) : features(f), store(f) {}
};

static void put_error(char *error, size_t error_bytes, const std::string &message) {
  if (error_bytes == 0) return;
  std::snprintf(error, error_bytes, "%s", message.c_str());
}

static bool letter_type(char letter, ValueType *out) {
  if (letter == 'i') *out = Type::I32;
  else if (letter == 'I') *out = Type::I64;
  else return false;
  return true;
}

static bool types_of(const char *letters, ValueTypes *out) {
  for (const char *c = letters; *c != '\0'; c++) {
    ValueType t;
    if (!letter_type(*c, &t)) return false;
    out->push_back(t);
  }
  return true;
}

static std::string letters_of(const ValueTypes &types) {
  std::string s;
  for (auto t : types) s += t == Type::I32 ? "i" : t == Type::I64 ? "I" : "?";
  return s;
}

static uint64_t to_u64(const Value &value, ValueType type) {
  return type == Type::I32 ? static_cast<uint64_t>(value.Get<u32>()) : value.Get<u64>();
}

static Value from_u64(uint64_t raw, ValueType type) {
  return type == Type::I32 ? Value::Make(static_cast<u32>(raw)) : Value::Make(static_cast<u64>(raw));
}

extern "C" rt_instance *rt_instantiate(const uint8_t *wasm, size_t wasm_bytes, uint32_t memory_pages,
                                       const rt_import *imports, size_t import_count, void *ctx, char *error,
                                       size_t error_bytes) {
  Features features;
  features.enable_threads();
  auto rt = std::make_unique<rt_instance>(features);
  ReadBinaryOptions options(features, nullptr, false, true, false);
  ModuleDesc desc;
  Errors errors;
  if (Failed(ReadBinaryInterp("firmware", wasm, wasm_bytes, options, &errors, &desc))) {
    put_error(error, error_bytes,
              "the image does not decode or validate: " + (errors.empty() ? std::string("(no detail)") : errors[0].message));
    return nullptr;
  }
  rt->module = Module::New(rt->store, desc);
  RefVec externs;
  for (const ImportType &import : rt->module->import_types()) {
    const std::string where = import.module + "." + import.name;
    if (import.type->kind == ExternKind::Memory) {
      if (import.module != "env" || import.name != "memory") {
        put_error(error, error_bytes, "import " + where + ": the board provides one memory, env.memory");
        return nullptr;
      }
      auto *declared = cast<MemoryType>(import.type.get());
      if (!declared->limits.is_shared) {
        put_error(error, error_bytes, "import env.memory: the image declares it unshared; the ABI's is shared");
        return nullptr;
      }
      if (declared->limits.has_max && declared->limits.max < memory_pages) {
        put_error(error, error_bytes, "import env.memory: the image's maximum is below the processor's RAM");
        return nullptr;
      }
      // Initial = maximum = the RAM: the memory never grows, and nothing beyond the RAM is reserved.
      rt->memory = Memory::New(rt->store, MemoryType(Limits(memory_pages, memory_pages, true)));
      externs.push_back(rt->memory.ref());
      continue;
    }
    if (import.type->kind != ExternKind::Func) {
      put_error(error, error_bytes, "import " + where + ": the board provides only functions and env.memory");
      return nullptr;
    }
    const rt_import *found = nullptr;
    for (size_t i = 0; i < import_count; i++) {
      if (import.module == imports[i].module && import.name == imports[i].name) found = &imports[i];
    }
    if (found == nullptr) {
      put_error(error, error_bytes, "import " + where + " is not provided by this board");
      return nullptr;
    }
    auto *declared = cast<FuncType>(import.type.get());
    ValueTypes params, results;
    types_of(found->params, &params);
    types_of(found->results, &results);
    if (declared->params != params || declared->results != results) {
      put_error(error, error_bytes, "import " + where + ": the image wants (" + letters_of(declared->params) + ")" +
                                        letters_of(declared->results) + ", the board provides (" + found->params + ")" +
                                        found->results);
      return nullptr;
    }
    rt_host_fn fn = found->fn;
    std::string name = where;
    ValueTypes param_types = params, result_types = results;
    Store *store = &rt->store;
    auto callback = [fn, ctx, name, param_types, result_types, store](Thread &, const Values &args, Values &out,
                                                                    Trap::Ptr *trap) -> Result {
      uint64_t raw[8];
      for (size_t i = 0; i < args.size() && i < 8; i++) raw[i] = to_u64(args[i], param_types[i]);
      uint64_t result = 0;
      if (fn(ctx, raw, &result) != 0) {
        *trap = Trap::New(*store, "aborted by the board in " + name);
        return Result::Error;
      }
      if (!result_types.empty()) out[0] = from_u64(result, result_types[0]);
      return Result::Ok;
    };
    HostFunc::Ptr host = HostFunc::New(rt->store, FuncType(params, results), callback);
    rt->host_funcs.push_back(host);
    externs.push_back(host.ref());
  }
  if (!rt->memory) {
    put_error(error, error_bytes, "the image imports no env.memory; the ABI's RAM is imported");
    return nullptr;
  }
  Trap::Ptr trap;
  rt->instance = Instance::Instantiate(rt->store, rt->module.ref(), externs, &trap);
  if (!rt->instance) {
    put_error(error, error_bytes, "instantiation failed: " + (trap ? trap->message() : std::string("(no detail)")));
    return nullptr;
  }
  rt->thread = std::make_unique<Thread>(rt->store);
  return rt.release();
}

extern "C" uint8_t *rt_memory(rt_instance *rt) { return rt->memory->UnsafeData(); }

extern "C" uint64_t rt_memory_bytes(rt_instance *rt) { return rt->memory->ByteSize(); }

extern "C" rt_status rt_call(rt_instance *rt, const char *name, const char *params, const char *results,
                             const uint64_t *args, uint64_t *result, char *error, size_t error_bytes) {
  const auto &exports = rt->module->export_types();
  for (size_t i = 0; i < exports.size(); i++) {
    if (exports[i].name != name) continue;
    if (exports[i].type->kind != ExternKind::Func) break;
    auto *type = cast<FuncType>(exports[i].type.get());
    ValueTypes want_params, want_results;
    types_of(params, &want_params);
    types_of(results, &want_results);
    if (type->params != want_params || type->results != want_results) {
      put_error(error, error_bytes, std::string("export ") + name + " has another signature than the ABI's");
      return RT_TRAP;
    }
    Func::Ptr func = rt->store.UnsafeGet<Func>(rt->instance->exports()[i]);
    Values in, out;
    for (size_t p = 0; p < want_params.size(); p++) in.push_back(from_u64(args[p], want_params[p]));
    Trap::Ptr trap;
    if (Failed(func->Call(*rt->thread, in, out, &trap))) {
      std::string message = trap ? trap->message() : std::string("trap");
      if (message.rfind("aborted by the board", 0) == 0) {
        put_error(error, error_bytes, message);
        return RT_ABORTED;
      }
      put_error(error, error_bytes, message);
      return RT_TRAP;
    }
    if (!want_results.empty() && result != nullptr) *result = to_u64(out[0], want_results[0]);
    return RT_OK;
  }
  put_error(error, error_bytes, std::string("the image has no function export ") + name);
  return RT_TRAP;
}

extern "C" void rt_free(rt_instance *rt) { delete rt; }

extern "C" const char *rt_name(void) { return "wabt interpreter " WABT_VERSION_STRING; }
