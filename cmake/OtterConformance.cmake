# otter's conformance suite and power-loss sweep for a port built outside otter's tree.
#
#   set(OTTER_ROOT /path/to/otter)
#   list(APPEND CMAKE_MODULE_PATH ${OTTER_ROOT}/cmake)
#   include(OtterConformance)
#   otter_add_conformance(NAME myboard SOURCES my_device.c LIBRARIES my_port)
#   otter_add_power_sweep(NAME myboard SOURCES my_device.c LIBRARIES my_port)
#
# SOURCES define the port's test devices and ota_conformance_ports[] (see docs/PORTING.md);
# LIBRARIES are linked (the port itself). Each entry of ota_conformance_ports[] becomes a CTest
# test conformance.<entry> (and power_sweep.<entry> for a device on flash). The targets
# otter_device (otter's device code: common, verification, bootloader logic) and
# otter_conformance_support (the test support) are made once; a port links otter_device.
# Every file comes from conformance/otter_conformance_files.txt, the list other build systems use.
cmake_minimum_required(VERSION 3.18)

if(NOT OTTER_ROOT)
    get_filename_component(OTTER_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()

# The files of one kind in the list (device, test, suite, sweep, inc), as absolute paths.
function(otter_conformance_files kind out)
    file(STRINGS ${OTTER_ROOT}/conformance/otter_conformance_files.txt lines REGEX "^${kind} ")
    set(files "")
    foreach(line ${lines})
        string(REGEX REPLACE "^${kind} " "" path "${line}")
        if(NOT EXISTS ${OTTER_ROOT}/${path})
            message(FATAL_ERROR "otter_conformance_files.txt names ${path}, which does not exist")
        endif()
        list(APPEND files ${OTTER_ROOT}/${path})
    endforeach()
    set(${out} ${files} PARENT_SCOPE)
endfunction()

# The names of the entries of ota_conformance_ports[] in the given sources: the first
# argument of each *_CONFORMANCE_PORT("name", ...) macro.
function(otter_conformance_port_names out)
    set(names "")
    foreach(src ${ARGN})
        get_filename_component(path ${src} ABSOLUTE)
        file(STRINGS ${path} lines REGEX "_CONFORMANCE_PORT\\(\"")
        foreach(line ${lines})
            string(REGEX MATCH "_CONFORMANCE_PORT\\(\"([^\"]+)\"" _ "${line}")
            list(APPEND names ${CMAKE_MATCH_1})
        endforeach()
    endforeach()
    set(${out} ${names} PARENT_SCOPE)
endfunction()

function(otter_conformance_targets)
    if(TARGET otter_conformance_support)
        return()
    endif()
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(OTTER_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
    otter_conformance_files(inc incs)
    otter_conformance_files(device device)
    otter_conformance_files(test test)
    add_library(otter_device STATIC ${device})
    target_include_directories(otter_device PUBLIC ${incs})
    set_target_properties(otter_device PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON)
    target_link_libraries(otter_device PUBLIC mbedx509 mbedcrypto)
    add_library(otter_conformance_support STATIC ${test})
    target_compile_definitions(otter_conformance_support
                               PUBLIC OTA_TEST_KEYS_DIR="${OTTER_ROOT}/test-keys")
    target_link_libraries(otter_conformance_support PUBLIC otter_device mbedtls mbedx509
                                                           mbedcrypto PkgConfig::OTTER_CMOCKA)
endfunction()

# One program (the suite or the sweep) over the port's sources; one test per entry.
function(otter_conformance_program kind test_prefix)
    cmake_parse_arguments(ARG "" "NAME" "SOURCES;LIBRARIES" ${ARGN})
    if(NOT ARG_NAME OR NOT ARG_SOURCES)
        message(FATAL_ERROR "otter_add_${test_prefix}: NAME and SOURCES are required")
    endif()
    otter_conformance_targets()
    otter_conformance_files(${kind} main)
    set(target ${ARG_NAME}_${test_prefix})
    add_executable(${target} ${main} ${ARG_SOURCES})
    target_link_libraries(${target} PRIVATE ${ARG_LIBRARIES} otter_conformance_support)
    otter_conformance_port_names(ports ${ARG_SOURCES})
    if(NOT ports)
        message(FATAL_ERROR "otter_add_${test_prefix}(${ARG_NAME}): no *_CONFORMANCE_PORT(\"name\", ...) "
                            "entry in ${ARG_SOURCES}")
    endif()
    foreach(port ${ports})
        add_test(NAME ${test_prefix}.${port} COMMAND ${target} ${port})
    endforeach()
endfunction()

# otter_add_conformance(NAME <name> SOURCES <files...> [LIBRARIES <libs...>]):
# the program <name>_conformance runs every case on every entry of the sources'
# ota_conformance_ports[]; `<name>_conformance ENTRY [CASE]` runs one entry (one case).
function(otter_add_conformance)
    otter_conformance_program(suite conformance ${ARGN})
endfunction()

# otter_add_power_sweep(NAME <name> SOURCES <files...> [LIBRARIES <libs...>]):
# the program <name>_power_sweep cuts every entry made with
# OTA_FLASH_DEVICE_CONFORMANCE_PORT at every flash operation of an update;
# `<name>_power_sweep ENTRY [SCENARIO]` reruns one entry (one scenario).
function(otter_add_power_sweep)
    otter_conformance_program(sweep power_sweep ${ARGN})
endfunction()
