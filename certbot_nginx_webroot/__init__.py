"""certbot-nginx-webroot: Let's Encrypt for nginx through a persistent webroot
location, renewed with one reload and no config edit.

Importing this package does no work: certbot imports every plugin's entry
point on start, so modules load only what they need.
"""
__version__ = "0.1.0"
