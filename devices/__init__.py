"""xbarsim.devices"""
