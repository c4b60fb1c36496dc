// WORKAROUND (no tests here): Debian's libsentencepiece.so.0 exports its bundled protobuf-lite
// symbols (~750 of them). When it is a direct DT_NEEDED of an executable that also loads
// libtorch_cpu -> libprotobuf.so.32, the dynamic linker finds sentencepiece's copies first and
// libprotobuf's static initialisers crash (SIGSEGV in ReflectionOps::FindInitializationErrors)
// before main. keel_models links sentencepiece (CMakeLists.txt), so every binary that links it
// and keeps libsentencepiece as NEEDED crashes at load.
// Referencing one libprotobuf symbol here makes libprotobuf.so a direct DT_NEEDED of models_tests,
// ahead of libsentencepiece, so symbol lookup finds the real libprotobuf first.
// The proper fix belongs in cmake/KeelDeps.cmake (link protobuf with --no-as-needed ahead of
// sentencepiece for every keel target); delete this file once that lands.
namespace google::protobuf {
void ShutdownProtobufLibrary();
}  // namespace google::protobuf

extern void (*const keel_protobuf_link_anchor)();
void (*const keel_protobuf_link_anchor)() = &google::protobuf::ShutdownProtobufLibrary;
