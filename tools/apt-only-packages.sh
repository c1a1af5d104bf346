# Sourced: APT_ONLY_PACKAGES, apt-get options that fetch only the Packages
# indexes an install needs.  apt.conf.d snippets of other tools add index
# targets (apt-file: Contents; appstream: DEP-11; command-not-found: CNF) and
# languages; a failed download of one of those must not fail an install
# that never reads them.  A transient failure is retried by apt itself too.
APT_ONLY_PACKAGES=(-o Acquire::Languages=none -o Acquire::Retries=2)
for _target in Contents-deb Contents-udeb Contents-deb-legacy Contents-dsc \
        DEP-11 DEP-11-icons DEP-11-icons-small DEP-11-icons-hidpi CNF; do
    APT_ONLY_PACKAGES+=(-o "Acquire::IndexTargets::deb::$_target::DefaultEnabled=false")
done
unset _target
