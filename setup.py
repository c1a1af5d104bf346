from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="certbot-nginx-webroot",
    version="0.1.0",
    description="Certbot plugin: http-01 through a persistent nginx webroot location; "
                "installs certificates and reloads (never restarts) nginx",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["certbot_nginx_webroot", "certbot_nginx_webroot.*"]),
    include_package_data=True,
    # The TLS policy snippet the installer copies into certbot's config dir.
    package_data={"certbot_nginx_webroot": ["options-ssl-nginx-webroot.conf"]},
    install_requires=[
        # Public API only: certbot.interfaces (its abc classes, accepted for
        # plugins since certbot 1.18), certbot.plugins.common (Installer and
        # its Reverter), certbot.errors.  1.21 is the oldest a supported
        # distro ships (Ubuntu 22.04); CI runs the suite on 1.21, 2.1, 2.9,
        # 4.2 and the newest (README, "Supported certbot versions").
        "certbot>=1.21",
        "acme>=1.21",
    ],
    extras_require={
        "test": ["pytest>=7"],
        # The benchmarks compare against certbot's own nginx plugin.
        # The tests that move a certificate from it use it too.
        "bench": ["certbot-nginx"],
    },
    entry_points={
        "certbot.plugins": [
            "nginx-webroot = certbot_nginx_webroot.plugin:NginxWebroot",
        ],
    },
    classifiers=[
        "Environment :: Plugins",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Internet :: WWW/HTTP",
        "Topic :: Security",
    ],
)
