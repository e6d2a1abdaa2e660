"""xbarsim.mapping"""
