# credbroker_proto_library(NAME PROTOS <files> IMPORT_DIRS <dirs> [GRPC])
# Generates C++ (and gRPC stubs with GRPC) into the build tree, keeping the
# proto's directory, so code includes "credbroker/v1/x.pb.h".
find_program(CREDBROKER_PROTOC protoc REQUIRED)
find_program(CREDBROKER_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

function(credbroker_proto_generate out_srcs out_hdrs)
  cmake_parse_arguments(ARG "GRPC" "ROOT" "PROTOS;IMPORT_DIRS" ${ARGN})
  set(srcs)
  set(hdrs)
  set(gen_dir ${CMAKE_BINARY_DIR}/gen)
  set(import_args)
  foreach(dir ${ARG_ROOT} ${ARG_IMPORT_DIRS})
    list(APPEND import_args -I${dir})
  endforeach()
  foreach(proto ${ARG_PROTOS})
    file(RELATIVE_PATH rel ${ARG_ROOT} ${proto})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(outputs ${gen_dir}/${base}.pb.cc ${gen_dir}/${base}.pb.h)
    set(plugin_args)
    if(ARG_GRPC)
      list(APPEND outputs ${gen_dir}/${base}.grpc.pb.cc ${gen_dir}/${base}.grpc.pb.h)
      set(plugin_args --grpc_out=${gen_dir}
          --plugin=protoc-gen-grpc=${CREDBROKER_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${gen_dir}
      COMMAND ${CREDBROKER_PROTOC} ${import_args} --cpp_out=${gen_dir} ${plugin_args} ${proto}
      DEPENDS ${proto} ${CREDBROKER_PROTOC}
      COMMENT "protoc ${rel}"
      VERBATIM)
    foreach(o ${outputs})
      if(o MATCHES "\\.cc$")
        list(APPEND srcs ${o})
      else()
        list(APPEND hdrs ${o})
      endif()
    endforeach()
  endforeach()
  set(${out_srcs} ${srcs} PARENT_SCOPE)
  set(${out_hdrs} ${hdrs} PARENT_SCOPE)
endfunction()
