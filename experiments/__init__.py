"""xbarsim.experiments"""
