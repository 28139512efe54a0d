# fish completion for qemu-launcher: options, and VM NAMEs from `qemu-launcher --list` (honouring
# -C/--config-dir on the line). After --import the words are a qemu command line.

# The config dir given on the command line so far (-C DIR, -CDIR, --config-dir DIR, --config-dir=DIR).
function __qemu_launcher_config_dir
    set -l words (commandline -opc)
    set -l n (count $words)
    for i in (seq 2 $n)
        switch $words[$i]
            case -C --config-dir
                if test $i -lt $n
                    echo $words[(math $i + 1)]
                    return
                end
            case '--config-dir=*'
                string replace -- --config-dir= '' $words[$i]
                return
            case '-C?*'
                string sub -s 3 -- $words[$i]
                return
        end
    end
end

function __qemu_launcher_names
    set -l words (commandline -opc)
    set -l dir (__qemu_launcher_config_dir)
    if test -n "$dir"
        $words[1] --config-dir (string replace -r '^~' $HOME -- $dir) --list 2>/dev/null
    else
        $words[1] --list 2>/dev/null
    end
end

# True once --import (or -i) is on the line: what follows belongs to qemu.
function __qemu_launcher_importing
    contains -- --import (commandline -opc); or contains -- -i (commandline -opc)
end

# True when a mode that takes no NAME (--list, --topology) is on the line.
function __qemu_launcher_no_name
    set -l words (commandline -opc)
    contains -- --list $words; or contains -- -l $words; or contains -- --topology $words
end

# Where the word being completed is after --import [--libvirt-xml FILE] [--] QEMU-BINARY ARGS...:
# sep (`--` or --libvirt-xml may come), xml (the FILE), binary, or args.
function __qemu_launcher_import_state
    set -l words (commandline -opc)
    set -l at (contains -i -- --import $words; or contains -i -- -i $words)
    if test -z "$at"
        echo none
        return
    end
    set -l rest $words[(math $at + 1)..-1]
    if test (count $words) -eq $at
        echo sep
        return
    end
    set -l sep_allowed yes
    if test "$rest[1]" = --libvirt-xml
        if test (count $rest) -eq 1
            echo xml
            return
        end
        set -e rest[1..2]
        set sep_allowed no
    end
    if test (count $rest) -eq 0
        test $sep_allowed = yes; and echo sep; or echo sep-only
        return
    end
    test "$rest[1]" = --; and set -e rest[1]
    test (count $rest) -eq 0; and echo binary; or echo args
end

complete -c qemu-launcher -f
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s n -l dry-run -d 'print the qemu command line and the pinning plan'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s c -l check -d 'validate the definition and its host CPUs'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s l -l list -d 'list the definitions'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s i -l import -d 'print a definition for a qemu command line (-- QEMU ARGS...)'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -l libvirt-xml -r -F -d 'with --import: a libvirt domain XML'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s s -l status -d 'show how the running VMs are placed'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -l json -d 'with --status: one JSON document'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -l topology -d 'show the host CPU topology'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -l suggest -d 'print a pinning and -smp for the VM on this host'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s C -l config-dir -x -a '(__fish_complete_directories)' -d 'read definitions from DIR'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s v -l verbose -d 'print each step'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s d -l debug -d 'print the pinning map and every host change'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s h -l help -d 'show the help'
complete -c qemu-launcher -n 'not __qemu_launcher_importing' -s V -l version -d 'show the version'
complete -c qemu-launcher -n 'not __qemu_launcher_importing; and not __qemu_launcher_no_name' -a '(__qemu_launcher_names)' -d 'VM definition'
# after --import: `--` (or --libvirt-xml FILE first), then a qemu binary, then qemu's arguments
complete -c qemu-launcher -n 'contains -- (__qemu_launcher_import_state) sep sep-only' -a -- --
complete -c qemu-launcher -n 'test (__qemu_launcher_import_state) = sep' -a --libvirt-xml -d 'a libvirt domain XML'
complete -c qemu-launcher -n 'test (__qemu_launcher_import_state) = xml' -F
complete -c qemu-launcher -n 'contains -- (__qemu_launcher_import_state) sep sep-only binary' -a '(complete -C "qemu-system-" | string match -r "^qemu-system-\S+")' -d 'qemu binary'
complete -c qemu-launcher -n 'test (__qemu_launcher_import_state) = args' -F
