# The tsan preset: Debian's Abseil is not TSan-instrumented, so every
# executable gets tests/tsan/absl_sync_tsan.cc, which adds the happens-before
# edges of absl::Mutex and absl::Notification (see that file).

add_library(credbroker_tsan_absl_sync OBJECT
  ${PROJECT_SOURCE_DIR}/tests/tsan/absl_sync_tsan.cc)
target_link_libraries(credbroker_tsan_absl_sync PRIVATE absl::synchronization)

# Adds the annotations to every executable defined in `dir` and below.
function(credbroker_tsan_annotate_executables dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "EXECUTABLE")
      target_sources(${t} PRIVATE $<TARGET_OBJECTS:credbroker_tsan_absl_sync>)
      target_link_libraries(${t} PRIVATE ${CMAKE_DL_LIBS})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    credbroker_tsan_annotate_executables(${sub})
  endforeach()
endfunction()
