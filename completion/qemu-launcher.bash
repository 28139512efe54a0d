# bash completion for qemu-launcher: options, and VM NAMEs from `qemu-launcher --list` (honouring
# -C/--config-dir on the line and QEMU_LAUNCHER_CONFIG_DIR). After --import the words belong to
# qemu: a command, then files.

_qemu_launcher_names()
{
	local dir=$1 cmd=$2
	dir=${dir/#\~/$HOME}
	"$cmd" ${dir:+--config-dir "$dir"} --list 2>/dev/null
}

_qemu_launcher()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=""
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	local opts="--dry-run --check --list --import --status --json --libvirt-xml --topology --suggest
		--config-dir
		--verbose --debug --help --version -n -c -l -i -s -C -v -d -h -V"
	local i w dir="" import_at=0 mode=""

	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-i | --import)
			import_at=$i
			break
			;;
		-C | --config-dir)
			# `--config-dir=DIR` arrives as three words: --config-dir = DIR
			if [[ ${COMP_WORDS[i + 1]} == = ]]; then
				dir=${COMP_WORDS[i + 2]}
				((i += 2))
			else
				dir=${COMP_WORDS[i + 1]}
				((i++))
			fi
			;;
		-l | --list | --topology) mode=list ;;
		-s | --status) mode=status ;;
		esac
	done

	if ((import_at)); then
		# --import [--libvirt-xml FILE] [--] QEMU-BINARY ARGS...
		local sep=$((import_at + 1))
		if [[ ${COMP_WORDS[sep]} == --libvirt-xml ]] && ((COMP_CWORD > sep)); then
			if ((COMP_CWORD == sep + 1)); then
				COMPREPLY=($(compgen -f -- "$cur"))
				return 0
			fi
			((sep += 2))
		fi
		local first=$sep
		[[ ${COMP_WORDS[sep]} == -- ]] && ((first++))
		if ((COMP_CWORD == sep)) && [[ -z $cur || $cur == -* ]]; then
			local w="--"
			((sep == import_at + 1)) && w="-- --libvirt-xml"
			COMPREPLY=($(compgen -W "$w" -- "$cur"))
		elif ((COMP_CWORD == first)); then
			COMPREPLY=($(compgen -c -- "${cur:-qemu-system-}"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		return 0
	fi

	if [[ $prev == --libvirt-xml ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
	fi
	if [[ $prev == -C || $prev == --config-dir ]] ||
		[[ $prev == = && ${COMP_WORDS[COMP_CWORD - 2]} == --config-dir ]]; then
		COMPREPLY=($(compgen -d -- "$cur"))
		return 0
	fi
	[[ $cur == = && $prev == --config-dir ]] && {
		COMPREPLY=($(compgen -d -- ""))
		return 0
	}
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return 0
	fi
	[[ $mode == list ]] && return 0
	COMPREPLY=($(compgen -W "$(_qemu_launcher_names "$dir" "${COMP_WORDS[0]}")" -- "$cur"))
	return 0
}
complete -F _qemu_launcher qemu-launcher
