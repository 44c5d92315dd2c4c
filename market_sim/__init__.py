"""market_sim"""
