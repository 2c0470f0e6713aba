#!/bin/sh
# Prints the compiler flag $1 if the C++ compiler accepts it, else "-DL4_NO_FLAG_<name>" (binding.gyp: a kernel
# set whose instructions the compiler does not know is left out instead of failing the whole build).
# usage: sh probe-flag.sh -mavxvnni   ->   -mavxvnni | -DL4_NO_FLAG_avxvnni
# The compiler is the one make uses for the addon: $CXX, else make's default g++.
name=$(echo "$1" | sed 's/^-m//; s/[^A-Za-z0-9_]/_/g')
if echo 'int main(){return 0;}' | ${CXX:-g++} "$1" -x c++ -fsyntax-only - >/dev/null 2>&1; then echo "$1"; else echo "-DL4_NO_FLAG_$name"; fi
